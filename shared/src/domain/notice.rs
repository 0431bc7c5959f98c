//! Notices: messages the connector writes into a thread for its employees, and the one
//! catalog of every text an employee or a contact reads, in en, es, fr, de and pt.

use serde::{Deserialize, Serialize};

use super::meta_error::FailureReason;
use super::{MessageId, UserId};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeCode {
    OptinRequested,
    OptinAccepted,
    OptinRejected,
    OptinFailed,
    OptinClosed,
    WindowPaused,
    ResumeRequested,
    ResumeFailed,
    Resumed,
    ParticipantAdded,
    ParticipantRemoved,
    ParticipantLeft,
    NotifyFailed,
    MessageFailed,
    DlpRedacted,
    /// The contact's window closes soon: write now, or a template will be needed.
    WindowClosing,
}

/// Who reads a notice: every participant, or one user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "type", content = "user_id")]
pub enum Audience {
    Participants,
    User(UserId),
}

impl Audience {
    pub fn public(&self) -> &str {
        match self {
            Audience::Participants => "participants",
            Audience::User(_) => "user",
        }
    }
}

/// A notice: what it tells, with the facts it tells of, and who reads it.
///
/// Stored flat (`StoredNotice`, the shape earlier builds wrote): a stored notice without the
/// facts its code needs is refused as corrupt.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "StoredNotice", into = "StoredNotice")]
pub struct Notice {
    pub kind: NoticeKind,
    pub audience: Audience,
}

/// What a notice tells.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoticeKind {
    OptinRequested,
    /// The contact accepted; `held`: messages held for it are going out now (else the
    /// employee may start the conversation).
    OptinAccepted {
        held: bool,
    },
    OptinRejected,
    /// The opt-in request failed; it goes again in 24 hours. `sms_fallback`: the number is
    /// not on WhatsApp, so the notice suggests another channel.
    OptinFailed {
        sms_fallback: bool,
    },
    OptinClosed,
    WindowPaused,
    ResumeRequested,
    ResumeFailed,
    /// The contact wrote again after the window closed; `held`: messages held meanwhile are
    /// going out now.
    Resumed {
        held: bool,
    },
    WindowClosing,
    /// Data-loss prevention redacted the reader's message.
    DlpRedacted {
        message_id: MessageId,
    },
    /// `actor` added `subject`.
    ParticipantAdded {
        actor: String,
        subject: Subject,
    },
    /// `actor` removed `subject`.
    ParticipantRemoved {
        actor: String,
        subject: Subject,
    },
    ParticipantLeft {
        subject: Subject,
    },
    /// The contact could not be told of a `change` of participants.
    NotifyFailed {
        change: ParticipantChange,
    },
    /// The reader's message failed, for `reason`.
    MessageFailed {
        message_id: MessageId,
        reason: FailureReason,
    },
}

/// The participant a change of participants is about (their name as at the time).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub user_id: UserId,
    pub name: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ParticipantChange {
    Added,
    Removed,
    Left,
}

impl Notice {
    /// To every participant.
    pub fn to_all(kind: NoticeKind) -> Notice {
        Notice { kind, audience: Audience::Participants }
    }

    /// To `user_id` alone.
    pub fn to(user_id: &UserId, kind: NoticeKind) -> Notice {
        Notice { kind, audience: Audience::User(user_id.clone()) }
    }

    pub fn code(&self) -> NoticeCode {
        use NoticeKind as K;
        match &self.kind {
            K::OptinRequested => NoticeCode::OptinRequested,
            K::OptinAccepted { .. } => NoticeCode::OptinAccepted,
            K::OptinRejected => NoticeCode::OptinRejected,
            K::OptinFailed { .. } => NoticeCode::OptinFailed,
            K::OptinClosed => NoticeCode::OptinClosed,
            K::WindowPaused => NoticeCode::WindowPaused,
            K::ResumeRequested => NoticeCode::ResumeRequested,
            K::ResumeFailed => NoticeCode::ResumeFailed,
            K::Resumed { .. } => NoticeCode::Resumed,
            K::WindowClosing => NoticeCode::WindowClosing,
            K::DlpRedacted { .. } => NoticeCode::DlpRedacted,
            K::ParticipantAdded { .. } => NoticeCode::ParticipantAdded,
            K::ParticipantRemoved { .. } => NoticeCode::ParticipantRemoved,
            K::ParticipantLeft { .. } => NoticeCode::ParticipantLeft,
            K::NotifyFailed { .. } => NoticeCode::NotifyFailed,
            K::MessageFailed { .. } => NoticeCode::MessageFailed,
        }
    }

    /// The participant a change of participants is about.
    pub fn subject(&self) -> Option<&Subject> {
        match &self.kind {
            NoticeKind::ParticipantAdded { subject, .. }
            | NoticeKind::ParticipantRemoved { subject, .. }
            | NoticeKind::ParticipantLeft { subject } => Some(subject),
            _ => None,
        }
    }

    /// The reader's message it is about.
    pub fn message_id(&self) -> Option<&MessageId> {
        match &self.kind {
            NoticeKind::DlpRedacted { message_id } | NoticeKind::MessageFailed { message_id, .. } => Some(message_id),
            _ => None,
        }
    }

    pub fn sms_fallback(&self) -> bool {
        matches!(self.kind, NoticeKind::OptinFailed { sms_fallback: true })
    }

    /// It speaks to its subject ("... removed you", "You left ..."): addressed to them alone.
    pub fn personal(&self) -> bool {
        match (&self.audience, self.subject()) {
            (Audience::User(reader), Some(subject)) => *reader == subject.user_id,
            _ => false,
        }
    }

    /// The notice in the reader's language.
    pub fn render(&self, locale: &str) -> String {
        let lang = Lang::of(locale);
        let template = match (&self.kind, self.personal()) {
            (NoticeKind::OptinAccepted { held: false }, _) => ACCEPTED_NOTHING_HELD,
            (NoticeKind::Resumed { held: true }, _) => RESUMED_RELEASING,
            (NoticeKind::ParticipantRemoved { .. }, true) => REMOVED_YOU,
            (NoticeKind::ParticipantLeft { .. }, true) => YOU_LEFT,
            (NoticeKind::NotifyFailed { change: ParticipantChange::Added }, _) => NOTIFY_FAILED_ADDED,
            (NoticeKind::NotifyFailed { change: ParticipantChange::Removed }, _) => NOTIFY_FAILED_REMOVED,
            (NoticeKind::NotifyFailed { change: ParticipantChange::Left }, _) => NOTIFY_FAILED_LEFT,
            _ => notice_text(self.code()),
        };
        let mut text = lang.pick(template).to_string();
        match &self.kind {
            NoticeKind::ParticipantAdded { actor, subject } | NoticeKind::ParticipantRemoved { actor, subject } => {
                text = text.replace("{actor}", actor).replace("{subject}", &subject.name);
            }
            NoticeKind::ParticipantLeft { subject } => {
                text = text.replace("{actor}", &subject.name).replace("{subject}", &subject.name);
            }
            NoticeKind::MessageFailed { reason, .. } => text = text.replace("{reason}", failure_text(*reason, lang)),
            NoticeKind::OptinFailed { sms_fallback: true } => {
                text.push(' ');
                text.push_str(lang.pick(SMS_FALLBACK));
            }
            _ => {}
        }
        text
    }
}

/// A notice as stored: its code and every fact any code needs, each optional.
#[derive(Serialize, Deserialize)]
struct StoredNotice {
    code: NoticeCode,
    audience: Audience,
    #[serde(default)]
    sms_fallback: bool,
    subject_user_id: Option<UserId>,
    reason: Option<FailureReason>,
    message_id: Option<MessageId>,
    #[serde(default)]
    actor_name: Option<String>,
    #[serde(default)]
    subject_name: Option<String>,
    #[serde(default)]
    change: Option<ParticipantChange>,
    /// Written for readers of the stored shape; `Notice::personal` derives it.
    #[serde(default)]
    personal: bool,
    /// Held messages go out with an acceptance or a resume. Absent in notices written before
    /// it was: an acceptance then said they did, a resume that they did not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    held: Option<bool>,
}

impl From<Notice> for StoredNotice {
    fn from(n: Notice) -> StoredNotice {
        let (code, personal) = (n.code(), n.personal());
        let mut s = StoredNotice {
            code,
            audience: n.audience,
            sms_fallback: false,
            subject_user_id: None,
            reason: None,
            message_id: None,
            actor_name: None,
            subject_name: None,
            change: None,
            personal,
            held: None,
        };
        match n.kind {
            NoticeKind::OptinFailed { sms_fallback } => s.sms_fallback = sms_fallback,
            NoticeKind::OptinAccepted { held } | NoticeKind::Resumed { held } => s.held = Some(held),
            NoticeKind::DlpRedacted { message_id } => s.message_id = Some(message_id),
            NoticeKind::MessageFailed { message_id, reason } => {
                (s.message_id, s.reason) = (Some(message_id), Some(reason))
            }
            NoticeKind::ParticipantAdded { actor, subject } | NoticeKind::ParticipantRemoved { actor, subject } => {
                (s.actor_name, s.subject_name, s.subject_user_id) =
                    (Some(actor), Some(subject.name), Some(subject.user_id));
            }
            NoticeKind::ParticipantLeft { subject } => {
                s.actor_name = Some(subject.name.clone());
                (s.subject_name, s.subject_user_id) = (Some(subject.name), Some(subject.user_id));
            }
            NoticeKind::NotifyFailed { change } => s.change = Some(change),
            _ => {}
        }
        s
    }
}

impl TryFrom<StoredNotice> for Notice {
    type Error = String;

    fn try_from(s: StoredNotice) -> Result<Notice, String> {
        let missing = |what: &str| format!("a {:?} notice without its {what}", s.code);
        let subject = || -> Result<Subject, String> {
            Ok(Subject {
                user_id: s.subject_user_id.clone().ok_or_else(|| missing("subject"))?,
                name: s.subject_name.clone().ok_or_else(|| missing("subject's name"))?,
            })
        };
        let actor = || s.actor_name.clone().ok_or_else(|| missing("actor"));
        let message_id = || s.message_id.clone().ok_or_else(|| missing("message"));
        use NoticeCode as C;
        let kind = match s.code {
            C::OptinRequested => NoticeKind::OptinRequested,
            C::OptinAccepted => NoticeKind::OptinAccepted { held: s.held.unwrap_or(true) },
            C::OptinRejected => NoticeKind::OptinRejected,
            C::OptinFailed => NoticeKind::OptinFailed { sms_fallback: s.sms_fallback },
            C::OptinClosed => NoticeKind::OptinClosed,
            C::WindowPaused => NoticeKind::WindowPaused,
            C::ResumeRequested => NoticeKind::ResumeRequested,
            C::ResumeFailed => NoticeKind::ResumeFailed,
            C::Resumed => NoticeKind::Resumed { held: s.held.unwrap_or(false) },
            C::WindowClosing => NoticeKind::WindowClosing,
            C::DlpRedacted => NoticeKind::DlpRedacted { message_id: message_id()? },
            C::ParticipantAdded => NoticeKind::ParticipantAdded { actor: actor()?, subject: subject()? },
            C::ParticipantRemoved => NoticeKind::ParticipantRemoved { actor: actor()?, subject: subject()? },
            C::ParticipantLeft => NoticeKind::ParticipantLeft { subject: subject()? },
            C::NotifyFailed => NoticeKind::NotifyFailed { change: s.change.ok_or_else(|| missing("change"))? },
            C::MessageFailed => NoticeKind::MessageFailed {
                message_id: message_id()?,
                reason: s.reason.ok_or_else(|| missing("reason"))?,
            },
        };
        Ok(Notice { kind, audience: s.audience })
    }
}

/// The catalog's languages; anything else reads English.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lang {
    En,
    Es,
    Fr,
    De,
    Pt,
}

impl Lang {
    /// From a BCP 47 tag: `pt-BR` reads Portuguese, `xx` English.
    pub fn of(locale: &str) -> Lang {
        let primary = locale.split(['-', '_']).next().unwrap_or("").to_ascii_lowercase();
        match primary.as_str() {
            "es" => Lang::Es,
            "fr" => Lang::Fr,
            "de" => Lang::De,
            "pt" => Lang::Pt,
            _ => Lang::En,
        }
    }

    pub fn code(self) -> &'static str {
        match self {
            Lang::En => "en",
            Lang::Es => "es",
            Lang::Fr => "fr",
            Lang::De => "de",
            Lang::Pt => "pt",
        }
    }

    fn pick(self, t: &'static [&'static str; 5]) -> &'static str {
        t[self as usize]
    }
}

type Text = [&'static str; 5];

fn notice_text(code: NoticeCode) -> &'static Text {
    use NoticeCode::*;
    match code {
        OptinRequested => &[
            "An opt-in request was sent to the contact. Your messages will be delivered once they accept.",
            "Se envió una solicitud de consentimiento al contacto. Sus mensajes se entregarán cuando la acepte.",
            "Une demande de consentement a été envoyée au contact. Vos messages seront remis dès qu'il l'acceptera.",
            "Eine Einwilligungsanfrage wurde an den Kontakt gesendet. Ihre Nachrichten werden zugestellt, sobald er zustimmt.",
            "Um pedido de consentimento foi enviado ao contacto. As suas mensagens serão entregues quando ele aceitar.",
        ],
        OptinAccepted => &[
            "The contact accepted to receive messages. Held messages are being delivered.",
            "El contacto aceptó recibir mensajes. Se están entregando los mensajes retenidos.",
            "Le contact a accepté de recevoir des messages. Les messages en attente sont en cours d'envoi.",
            "Der Kontakt hat dem Empfang von Nachrichten zugestimmt. Zurückgehaltene Nachrichten werden zugestellt.",
            "O contacto aceitou receber mensagens. As mensagens retidas estão a ser entregues.",
        ],
        OptinRejected => &[
            "The contact opted out of WhatsApp messages. They were told they can opt back in by replying YES.",
            "El contacto se dio de baja de los mensajes de WhatsApp. Se le indicó que puede volver a suscribirse respondiendo YES.",
            "Le contact s'est désinscrit des messages WhatsApp. Il a été informé qu'il peut se réinscrire en répondant YES.",
            "Der Kontakt hat WhatsApp-Nachrichten abbestellt. Er wurde informiert, dass er mit der Antwort YES wieder zustimmen kann.",
            "O contacto cancelou as mensagens do WhatsApp. Foi informado de que pode voltar a aceitar respondendo YES.",
        ],
        OptinFailed => &[
            "We were unable to deliver your opt-in message. We'll attempt to resend it and keep you updated.",
            "No pudimos entregar su mensaje de consentimiento. Intentaremos reenviarlo y le mantendremos informado.",
            "Nous n'avons pas pu remettre votre message de consentement. Nous tenterons de le renvoyer et vous tiendrons informé.",
            "Wir konnten Ihre Einwilligungsanfrage nicht zustellen. Wir versuchen, sie erneut zu senden, und halten Sie auf dem Laufenden.",
            "Não foi possível entregar a sua mensagem de consentimento. Tentaremos reenviá-la e manteremos você informado.",
        ],
        OptinClosed => &[
            "The opt-in request could not be delivered a second time. The conversation has been closed.",
            "La solicitud de consentimiento no se pudo entregar por segunda vez. La conversación se ha cerrado.",
            "La demande de consentement n'a pas pu être remise une seconde fois. La conversation a été fermée.",
            "Die Einwilligungsanfrage konnte auch ein zweites Mal nicht zugestellt werden. Die Unterhaltung wurde geschlossen.",
            "O pedido de consentimento não pôde ser entregue uma segunda vez. A conversa foi encerrada.",
        ],
        WindowPaused => &[
            "The contact has not written for 24 hours. New messages will be held, and a request to resume the conversation will be sent.",
            "El contacto no ha escrito en 24 horas. Los mensajes nuevos quedarán retenidos y se enviará una solicitud para reanudar la conversación.",
            "Le contact n'a pas écrit depuis 24 heures. Les nouveaux messages seront retenus et une demande de reprise de la conversation sera envoyée.",
            "Der Kontakt hat seit 24 Stunden nicht geschrieben. Neue Nachrichten werden zurückgehalten, und eine Anfrage zur Fortsetzung der Unterhaltung wird gesendet.",
            "O contacto não escreve há 24 horas. As novas mensagens ficarão retidas e será enviado um pedido para retomar a conversa.",
        ],
        ResumeRequested => &[
            "A request to resume the conversation was sent to the contact. Your messages will be delivered when they reply.",
            "Se envió al contacto una solicitud para reanudar la conversación. Sus mensajes se entregarán cuando responda.",
            "Une demande de reprise de la conversation a été envoyée au contact. Vos messages seront remis dès qu'il répondra.",
            "Eine Anfrage zur Fortsetzung der Unterhaltung wurde an den Kontakt gesendet. Ihre Nachrichten werden zugestellt, sobald er antwortet.",
            "Foi enviado ao contacto um pedido para retomar a conversa. As suas mensagens serão entregues quando ele responder.",
        ],
        ResumeFailed => &[
            "Failed to deliver resume request.",
            "No se pudo entregar la solicitud de reanudación.",
            "Échec de la remise de la demande de reprise.",
            "Die Anfrage zur Fortsetzung konnte nicht zugestellt werden.",
            "Falha ao entregar o pedido de retoma.",
        ],
        Resumed => &[
            "[Auto Message] The contact has resumed the conversation. You can now continue messaging with them.",
            "[Mensaje automático] El contacto ha reanudado la conversación. Ya puede seguir enviándole mensajes.",
            "[Message automatique] Le contact a repris la conversation. Vous pouvez de nouveau lui écrire.",
            "[Automatische Nachricht] Der Kontakt hat die Unterhaltung fortgesetzt. Sie können ihm jetzt wieder schreiben.",
            "[Mensagem automática] O contacto retomou a conversa. Já pode continuar a enviar-lhe mensagens.",
        ],
        ParticipantAdded => &[
            "Your colleague {actor} has added {subject} to the conversation.",
            "Su colega {actor} ha añadido a {subject} a la conversación.",
            "Votre collègue {actor} a ajouté {subject} à la conversation.",
            "Ihr Kollege {actor} hat {subject} zur Unterhaltung hinzugefügt.",
            "O seu colega {actor} adicionou {subject} à conversa.",
        ],
        ParticipantRemoved => &[
            "Your colleague {actor} has removed {subject} from the conversation.",
            "Su colega {actor} ha eliminado a {subject} de la conversación.",
            "Votre collègue {actor} a retiré {subject} de la conversation.",
            "Ihr Kollege {actor} hat {subject} aus der Unterhaltung entfernt.",
            "O seu colega {actor} removeu {subject} da conversa.",
        ],
        ParticipantLeft => &[
            "Your colleague {actor} has left the conversation.",
            "Su colega {actor} ha abandonado la conversación.",
            "Votre collègue {actor} a quitté la conversation.",
            "Ihr Kollege {actor} hat die Unterhaltung verlassen.",
            "O seu colega {actor} saiu da conversa.",
        ],
        NotifyFailed => &[
            "We were unable to notify the contact of a change in the conversation.",
            "No pudimos avisar al contacto de un cambio en la conversación.",
            "Nous n'avons pas pu informer le contact d'un changement dans la conversation.",
            "Wir konnten den Kontakt nicht über eine Änderung der Unterhaltung informieren.",
            "Não foi possível avisar o contacto de uma alteração na conversa.",
        ],
        MessageFailed => &[
            "A message could not be delivered: {reason}",
            "No se pudo entregar un mensaje: {reason}",
            "Un message n'a pas pu être remis : {reason}",
            "Eine Nachricht konnte nicht zugestellt werden: {reason}",
            "Não foi possível entregar uma mensagem: {reason}",
        ],
        DlpRedacted => &[
            "Sensitive data was removed from your message before it was sent.",
            "Se eliminaron datos sensibles de su mensaje antes de enviarlo.",
            "Des données sensibles ont été retirées de votre message avant son envoi.",
            "Vertrauliche Daten wurden vor dem Senden aus Ihrer Nachricht entfernt.",
            "Foram removidos dados sensíveis da sua mensagem antes do envio.",
        ],
        WindowClosing => &[
            "The contact's 24-hour window closes within the hour. Write now; after that, messages wait until they reply.",
            "La ventana de 24 horas del contacto se cierra en menos de una hora. Escriba ahora; después, los mensajes esperarán su respuesta.",
            "La fenêtre de 24 heures du contact se ferme dans l'heure. Écrivez maintenant ; ensuite, les messages attendront sa réponse.",
            "Das 24-Stunden-Fenster des Kontakts schließt innerhalb der nächsten Stunde. Schreiben Sie jetzt; danach warten Nachrichten auf seine Antwort.",
            "A janela de 24 horas do contacto fecha dentro de uma hora. Escreva agora; depois, as mensagens aguardarão a resposta dele.",
        ],
    }
}

/// An acceptance with nothing held: the employee may begin.
const ACCEPTED_NOTHING_HELD: &Text = &[
    "The contact accepted to receive messages. You can start the conversation.",
    "El contacto aceptó recibir mensajes. Ya puede iniciar la conversación.",
    "Le contact a accepté de recevoir des messages. Vous pouvez commencer la conversation.",
    "Der Kontakt hat dem Empfang von Nachrichten zugestimmt. Sie können die Unterhaltung beginnen.",
    "O contacto aceitou receber mensagens. Já pode iniciar a conversa.",
];

/// A resume that lets held messages go: it says so.
const RESUMED_RELEASING: &Text = &[
    "The contact has resumed the conversation. Held messages are being delivered.",
    "El contacto ha reanudado la conversación. Se están entregando los mensajes retenidos.",
    "Le contact a repris la conversation. Les messages en attente sont en cours d'envoi.",
    "Der Kontakt hat die Unterhaltung fortgesetzt. Zurückgehaltene Nachrichten werden zugestellt.",
    "O contacto retomou a conversa. As mensagens retidas estão a ser entregues.",
];

const REMOVED_YOU: &Text = &[
    "Your colleague {actor} has removed you from the conversation.",
    "Su colega {actor} le ha eliminado de la conversación.",
    "Votre collègue {actor} vous a retiré de la conversation.",
    "Ihr Kollege {actor} hat Sie aus der Unterhaltung entfernt.",
    "O seu colega {actor} removeu-o da conversa.",
];

const YOU_LEFT: &Text = &[
    "You left the conversation.",
    "Ha abandonado la conversación.",
    "Vous avez quitté la conversation.",
    "Sie haben die Unterhaltung verlassen.",
    "Saiu da conversa.",
];

const NOTIFY_FAILED_ADDED: &Text = &[
    "We were unable to notify the contact that a participant was added to the conversation.",
    "No pudimos avisar al contacto de que se añadió un participante a la conversación.",
    "Nous n'avons pas pu informer le contact qu'un participant a été ajouté à la conversation.",
    "Wir konnten den Kontakt nicht darüber informieren, dass ein Teilnehmer zur Unterhaltung hinzugefügt wurde.",
    "Não foi possível avisar o contacto de que foi adicionado um participante à conversa.",
];

const NOTIFY_FAILED_REMOVED: &Text = &[
    "We were unable to notify the contact that a participant was removed from the conversation.",
    "No pudimos avisar al contacto de que se eliminó a un participante de la conversación.",
    "Nous n'avons pas pu informer le contact qu'un participant a été retiré de la conversation.",
    "Wir konnten den Kontakt nicht darüber informieren, dass ein Teilnehmer aus der Unterhaltung entfernt wurde.",
    "Não foi possível avisar o contacto de que um participante foi removido da conversa.",
];

const NOTIFY_FAILED_LEFT: &Text = &[
    "We were unable to notify the contact that a participant has left the conversation.",
    "No pudimos avisar al contacto de que un participante ha abandonado la conversación.",
    "Nous n'avons pas pu informer le contact qu'un participant a quitté la conversation.",
    "Wir konnten den Kontakt nicht darüber informieren, dass ein Teilnehmer die Unterhaltung verlassen hat.",
    "Não foi possível avisar o contacto de que um participante saiu da conversa.",
];

const SMS_FALLBACK: &Text = &[
    "The number may not be on WhatsApp: consider reaching the contact by SMS.",
    "Es posible que el número no esté en WhatsApp: considere contactar por SMS.",
    "Le numéro n'est peut-être pas sur WhatsApp : pensez à joindre le contact par SMS.",
    "Die Nummer ist möglicherweise nicht bei WhatsApp: Erwägen Sie, den Kontakt per SMS zu erreichen.",
    "O número pode não estar no WhatsApp: considere contactar por SMS.",
];

/// The employee-facing explanation of a failed message, with what to do about it.
/// What a reader sees for a kind of message WhatsApp's API does not deliver (a poll, a type
/// added later): it is kept, with what Meta sent, on the record.
pub fn unsupported_text(lang: Lang) -> &'static str {
    lang.pick(&[
        "This kind of message cannot be shown here. It is kept on the record.",
        "Este tipo de mensaje no se puede mostrar aquí. Queda guardado en el registro.",
        "Ce type de message ne peut pas être affiché ici. Il est conservé dans l'archive.",
        "Diese Art von Nachricht kann hier nicht angezeigt werden. Sie ist im Archiv gespeichert.",
        "Este tipo de mensagem não pode ser mostrado aqui. Fica guardado no registo.",
    ])
}

pub fn failure_text(reason: FailureReason, lang: Lang) -> &'static str {
    use FailureReason::*;
    let t: &'static Text = match reason {
        Undeliverable => &[
            "the number cannot receive WhatsApp messages (not on WhatsApp or an outdated app). Try another channel.",
            "el número no puede recibir mensajes de WhatsApp (no usa WhatsApp o la aplicación está desactualizada). Pruebe otro canal.",
            "le numéro ne peut pas recevoir de messages WhatsApp (absent de WhatsApp ou application obsolète). Essayez un autre canal.",
            "die Nummer kann keine WhatsApp-Nachrichten empfangen (nicht bei WhatsApp oder veraltete App). Versuchen Sie einen anderen Kanal.",
            "o número não pode receber mensagens do WhatsApp (não usa WhatsApp ou a aplicação está desatualizada). Tente outro canal.",
        ],
        MarketingLimit => &[
            "WhatsApp limited marketing messages to this contact. Wait at least 24 hours before sending again.",
            "WhatsApp limitó los mensajes de marketing a este contacto. Espere al menos 24 horas antes de volver a enviar.",
            "WhatsApp a limité les messages marketing vers ce contact. Attendez au moins 24 heures avant de renvoyer.",
            "WhatsApp hat Marketingnachrichten an diesen Kontakt begrenzt. Warten Sie mindestens 24 Stunden, bevor Sie erneut senden.",
            "O WhatsApp limitou as mensagens de marketing a este contacto. Aguarde pelo menos 24 horas antes de reenviar.",
        ],
        MarketingOptOut => &[
            "the contact has stopped marketing messages from the business. Do not resend.",
            "el contacto dejó de recibir mensajes de marketing de la empresa. No lo reenvíe.",
            "le contact a refusé les messages marketing de l'entreprise. Ne renvoyez pas.",
            "der Kontakt hat Marketingnachrichten des Unternehmens abbestellt. Nicht erneut senden.",
            "o contacto deixou de receber mensagens de marketing da empresa. Não reenvie.",
        ],
        InvalidMessage => &[
            "WhatsApp refused the message as invalid. Check its content and send it again.",
            "WhatsApp rechazó el mensaje por no ser válido. Revise su contenido y vuelva a enviarlo.",
            "WhatsApp a refusé le message comme invalide. Vérifiez son contenu et renvoyez-le.",
            "WhatsApp hat die Nachricht als ungültig abgelehnt. Prüfen Sie den Inhalt und senden Sie sie erneut.",
            "O WhatsApp recusou a mensagem por ser inválida. Verifique o conteúdo e envie-a novamente.",
        ],
        Template => &[
            "the template is missing, not approved or paused. Ask your administrator to check it.",
            "la plantilla no existe, no está aprobada o está en pausa. Pida a su administrador que la revise.",
            "le modèle est absent, non approuvé ou suspendu. Demandez à votre administrateur de le vérifier.",
            "die Vorlage fehlt, ist nicht genehmigt oder pausiert. Bitten Sie Ihren Administrator, sie zu prüfen.",
            "o modelo não existe, não está aprovado ou está em pausa. Peça ao seu administrador para o verificar.",
        ],
        Media => &[
            "the picture could not be processed. Send a JPEG or PNG of at most 5 MB.",
            "no se pudo procesar la imagen. Envíe un JPEG o PNG de 5 MB como máximo.",
            "l'image n'a pas pu être traitée. Envoyez un JPEG ou PNG de 5 Mo au plus.",
            "das Bild konnte nicht verarbeitet werden. Senden Sie ein JPEG oder PNG mit höchstens 5 MB.",
            "não foi possível processar a imagem. Envie um JPEG ou PNG com 5 MB no máximo.",
        ],
        TokenExpired => &[
            "the connector's WhatsApp access token has expired. Tell your administrator, then send it again.",
            "el token de acceso de WhatsApp del conector caducó. Avise a su administrador y vuelva a enviarlo.",
            "le jeton d'accès WhatsApp du connecteur a expiré. Prévenez votre administrateur, puis renvoyez-le.",
            "das WhatsApp-Zugriffstoken des Connectors ist abgelaufen. Informieren Sie Ihren Administrator und senden Sie erneut.",
            "o token de acesso do WhatsApp do conector expirou. Avise o seu administrador e envie novamente.",
        ],
        AccountRestricted => &[
            "the business's WhatsApp account cannot send right now. Tell your administrator.",
            "la cuenta de WhatsApp de la empresa no puede enviar en este momento. Avise a su administrador.",
            "le compte WhatsApp de l'entreprise ne peut pas envoyer pour le moment. Prévenez votre administrateur.",
            "das WhatsApp-Konto des Unternehmens kann derzeit nicht senden. Informieren Sie Ihren Administrator.",
            "a conta WhatsApp da empresa não pode enviar neste momento. Avise o seu administrador.",
        ],
        SpamLimit => &[
            "WhatsApp restricted sending from the business number after spam reports. Tell your administrator.",
            "WhatsApp restringió los envíos del número de la empresa por denuncias de spam. Avise a su administrador.",
            "WhatsApp a restreint les envois du numéro de l'entreprise après des signalements de spam. Prévenez votre administrateur.",
            "WhatsApp hat das Senden von der Unternehmensnummer nach Spam-Meldungen eingeschränkt. Informieren Sie Ihren Administrator.",
            "O WhatsApp restringiu os envios do número da empresa após denúncias de spam. Avise o seu administrador.",
        ],
        BlockedByBusiness => &[
            "the business has blocked this contact. Ask your administrator to unblock them.",
            "la empresa bloqueó a este contacto. Pida a su administrador que lo desbloquee.",
            "l'entreprise a bloqué ce contact. Demandez à votre administrateur de le débloquer.",
            "das Unternehmen hat diesen Kontakt blockiert. Bitten Sie Ihren Administrator, ihn freizugeben.",
            "a empresa bloqueou este contacto. Peça ao seu administrador para o desbloquear.",
        ],
        Experiment => &[
            "WhatsApp did not deliver it because the contact is part of a Meta experiment. Try another channel.",
            "WhatsApp no lo entregó porque el contacto participa en un experimento de Meta. Pruebe otro canal.",
            "WhatsApp ne l'a pas remis car le contact fait partie d'une expérience de Meta. Essayez un autre canal.",
            "WhatsApp hat sie nicht zugestellt, weil der Kontakt Teil eines Meta-Experiments ist. Versuchen Sie einen anderen Kanal.",
            "O WhatsApp não a entregou porque o contacto faz parte de uma experiência da Meta. Tente outro canal.",
        ],
        RecipientIdUnsupported => &[
            "this kind of message needs the contact's phone number. Start a thread with their number.",
            "este tipo de mensaje necesita el número del contacto. Inicie una conversación con su número.",
            "ce type de message nécessite le numéro du contact. Démarrez une conversation avec son numéro.",
            "diese Nachrichtenart benötigt die Telefonnummer des Kontakts. Starten Sie eine Unterhaltung mit seiner Nummer.",
            "este tipo de mensagem precisa do número do contacto. Inicie uma conversa com o número.",
        ],
        RetriesExhausted => &[
            "WhatsApp was unavailable and several attempts failed. Send it again later.",
            "WhatsApp no estaba disponible y varios intentos fallaron. Vuelva a enviarlo más tarde.",
            "WhatsApp était indisponible et plusieurs tentatives ont échoué. Renvoyez-le plus tard.",
            "WhatsApp war nicht erreichbar, mehrere Versuche sind fehlgeschlagen. Senden Sie sie später erneut.",
            "O WhatsApp estava indisponível e várias tentativas falharam. Envie novamente mais tarde.",
        ],
        MediaUnavailable => &[
            "the file could not be downloaded from WhatsApp. Ask the contact to send it again.",
            "no se pudo descargar el archivo de WhatsApp. Pida al contacto que lo vuelva a enviar.",
            "le fichier n'a pas pu être téléchargé depuis WhatsApp. Demandez au contact de le renvoyer.",
            "die Datei konnte nicht von WhatsApp geladen werden. Bitten Sie den Kontakt, sie erneut zu senden.",
            "não foi possível transferir o ficheiro do WhatsApp. Peça ao contacto para o enviar novamente.",
        ],
        DeliveryUnknown => &[
            "WhatsApp did not confirm this message, so it may or may not have arrived. Ask the contact before sending it again.",
            "WhatsApp no confirmó este mensaje: puede que haya llegado o no. Pregunte al contacto antes de volver a enviarlo.",
            "WhatsApp n'a pas confirmé ce message : il est peut-être arrivé, peut-être pas. Demandez au contact avant de le renvoyer.",
            "WhatsApp hat diese Nachricht nicht bestätigt; sie ist vielleicht angekommen, vielleicht nicht. Fragen Sie den Kontakt, bevor Sie sie erneut senden.",
            "O WhatsApp não confirmou esta mensagem: pode ter chegado ou não. Pergunte ao contacto antes de a enviar novamente.",
        ],
        HeldExpired => &[
            "it waited too long for the contact's consent or reply and was not sent. Send it again if it still matters.",
            "esperó demasiado el consentimiento o la respuesta del contacto y no se envió. Vuelva a enviarlo si aún es necesario.",
            "il a attendu trop longtemps le consentement ou la réponse du contact et n'a pas été envoyé. Renvoyez-le s'il est encore utile.",
            "sie hat zu lange auf die Zustimmung oder Antwort des Kontakts gewartet und wurde nicht gesendet. Senden Sie sie erneut, falls sie noch wichtig ist.",
            "esperou demasiado pelo consentimento ou resposta do contacto e não foi enviada. Envie-a novamente se ainda for relevante.",
        ],
        OptedOut => &[
            "the contact opted out of WhatsApp messages before it could be sent, so it was not sent.",
            "el contacto dejó de aceptar mensajes de WhatsApp antes de que pudiera enviarse, así que no se envió.",
            "le contact s'est désabonné des messages WhatsApp avant son envoi : il n'a pas été envoyé.",
            "der Kontakt hat WhatsApp-Nachrichten abbestellt, bevor sie gesendet werden konnte; sie wurde nicht gesendet.",
            "o contacto deixou de aceitar mensagens do WhatsApp antes de poder ser enviada, por isso não foi enviada.",
        ],
        Unknown => &[
            "WhatsApp refused the message. Send it again, and tell your administrator if it keeps failing.",
            "WhatsApp rechazó el mensaje. Vuelva a enviarlo y avise a su administrador si sigue fallando.",
            "WhatsApp a refusé le message. Renvoyez-le et prévenez votre administrateur si l'échec persiste.",
            "WhatsApp hat die Nachricht abgelehnt. Senden Sie sie erneut und informieren Sie Ihren Administrator, falls es weiter fehlschlägt.",
            "O WhatsApp recusou a mensagem. Envie-a novamente e avise o seu administrador se continuar a falhar.",
        ],
    };
    lang.pick(t)
}

/// Texts the connector sends to the contact itself, in the thread's template language.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContactText {
    OptedOut,
    OptedIn,
    /// `{name}` joined, was removed, or left.
    Participant(ParticipantChange),
}

pub fn contact_text(t: ContactText, lang: Lang) -> &'static str {
    match t {
        ContactText::Participant(ParticipantChange::Added) => lang.pick(&[
            "{name} has joined the conversation.",
            "{name} se ha unido a la conversación.",
            "{name} a rejoint la conversation.",
            "{name} ist der Unterhaltung beigetreten.",
            "{name} juntou-se à conversa.",
        ]),
        ContactText::Participant(ParticipantChange::Removed | ParticipantChange::Left) => lang.pick(&[
            "{name} has left the conversation.",
            "{name} ha dejado la conversación.",
            "{name} a quitté la conversation.",
            "{name} hat die Unterhaltung verlassen.",
            "{name} saiu da conversa.",
        ]),
        ContactText::OptedIn => lang.pick(&[
            "Thank you. You will now receive our messages here. Reply STOP at any time to opt out.",
            "Gracias. A partir de ahora recibirá nuestros mensajes aquí. Responda STOP en cualquier momento para darse de baja.",
            "Merci. Vous recevrez désormais nos messages ici. Répondez STOP à tout moment pour vous désinscrire.",
            "Danke. Sie erhalten unsere Nachrichten ab jetzt hier. Antworten Sie jederzeit mit STOP, um sich abzumelden.",
            "Obrigado. A partir de agora receberá as nossas mensagens aqui. Responda STOP a qualquer momento para deixar de receber.",
        ]),
        ContactText::OptedOut => lang.pick(&[
            "You will no longer receive messages from us on WhatsApp. Reply YES at any time to opt back in.",
            "Ya no recibirá nuestros mensajes por WhatsApp. Responda YES en cualquier momento para volver a suscribirse.",
            "Vous ne recevrez plus nos messages sur WhatsApp. Répondez YES à tout moment pour vous réinscrire.",
            "Sie erhalten keine WhatsApp-Nachrichten mehr von uns. Antworten Sie jederzeit mit YES, um wieder zuzustimmen.",
            "Deixará de receber as nossas mensagens no WhatsApp. Responda YES a qualquer momento para voltar a aceitar.",
        ]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_in_the_readers_language_with_english_fallback() {
        let n = Notice::to_all(NoticeKind::Resumed { held: false });
        assert_eq!(
            n.render("en"),
            "[Auto Message] The contact has resumed the conversation. You can now continue messaging with them."
        );
        assert!(n.render("pt-BR").starts_with("[Mensagem automática] O contacto retomou"));
        assert_eq!(n.render("xx"), n.render("en"));
        assert_eq!(Notice::to_all(NoticeKind::ResumeFailed).render("en-GB"), "Failed to deliver resume request.");
    }

    /// Issue 31, "Notices": an acceptance with nothing held says the employee can start; a
    /// resume that lets held messages go says so; a notice stored before the fact was kept
    /// reads as it did.
    #[test]
    fn acceptance_and_resume_say_whether_held_messages_are_going_out() {
        let text = |kind| Notice::to_all(kind).render("en");
        assert_eq!(
            text(NoticeKind::OptinAccepted { held: false }),
            "The contact accepted to receive messages. You can start the conversation."
        );
        assert_eq!(
            text(NoticeKind::OptinAccepted { held: true }),
            "The contact accepted to receive messages. Held messages are being delivered."
        );
        assert_eq!(
            text(NoticeKind::Resumed { held: true }),
            "The contact has resumed the conversation. Held messages are being delivered."
        );
        let mut old =
            serde_json::to_value(StoredNotice::from(Notice::to_all(NoticeKind::OptinAccepted { held: false })))
                .unwrap();
        old.as_object_mut().unwrap().remove("held");
        let old: StoredNotice = serde_json::from_value(old).unwrap();
        assert_eq!(Notice::try_from(old).unwrap().kind, NoticeKind::OptinAccepted { held: true });
        for kind in [NoticeKind::OptinAccepted { held: false }, NoticeKind::Resumed { held: true }] {
            let n = Notice::to_all(kind);
            let back = Notice::try_from(StoredNotice::from(n.clone())).unwrap();
            assert_eq!(back, n);
        }
    }

    fn sam() -> Subject {
        Subject { user_id: "u2".into(), name: "Sam".into() }
    }

    #[test]
    fn participant_notices_name_who_did_what_and_speak_to_their_subject() {
        let n = Notice::to_all(NoticeKind::ParticipantRemoved { actor: "Alex".into(), subject: sam() });
        assert_eq!(n.render("en"), "Your colleague Alex has removed Sam from the conversation.");
        assert!(!n.personal());
        let to_sam = Notice { audience: Audience::User("u2".into()), ..n.clone() };
        assert!(to_sam.personal());
        assert_eq!(to_sam.render("en"), "Your colleague Alex has removed you from the conversation.");
        let left = Notice::to(&"u2".into(), NoticeKind::ParticipantLeft { subject: sam() });
        assert_eq!(left.render("en"), "You left the conversation.");
        let nf = Notice::to_all(NoticeKind::NotifyFailed { change: ParticipantChange::Left });
        assert_eq!(
            nf.render("en"),
            "We were unable to notify the contact that a participant has left the conversation."
        );
    }

    #[test]
    fn message_failed_names_the_reason_and_sms_fallback_is_appended() {
        let n = Notice::to(
            &"u1".into(),
            NoticeKind::MessageFailed { message_id: "m1".into(), reason: FailureReason::Template },
        );
        assert!(n.render("de").contains("Vorlage"));
        let f = Notice::to_all(NoticeKind::OptinFailed { sms_fallback: true });
        assert!(f.render("fr").contains("SMS"));
        assert!(!Notice::to_all(NoticeKind::OptinFailed { sms_fallback: false }).render("fr").contains("SMS"));
    }

    /// Items written before notices carried their own data read back the same, and a notice is
    /// stored in that shape.
    #[test]
    fn a_notice_is_stored_flat_as_before_and_read_back_whole() {
        let stored = serde_json::json!({
            "code": "participant_removed", "audience": {"type": "user", "user_id": "u2"},
            "sms_fallback": false, "subject_user_id": "u2", "reason": null, "message_id": null,
            "actor_name": "Alex", "subject_name": "Sam", "change": null, "personal": true
        });
        let n: Notice = serde_json::from_value(stored.clone()).unwrap();
        assert_eq!(
            n,
            Notice::to(&"u2".into(), NoticeKind::ParticipantRemoved { actor: "Alex".into(), subject: sam() })
        );
        assert_eq!(serde_json::to_value(&n).unwrap(), stored);
        let kinds = [
            NoticeKind::OptinRequested,
            NoticeKind::OptinFailed { sms_fallback: true },
            NoticeKind::DlpRedacted { message_id: "m1".into() },
            NoticeKind::ParticipantAdded { actor: "Alex".into(), subject: sam() },
            NoticeKind::ParticipantLeft { subject: sam() },
            NoticeKind::NotifyFailed { change: ParticipantChange::Added },
            NoticeKind::MessageFailed { message_id: "m1".into(), reason: FailureReason::HeldExpired },
        ];
        for kind in kinds {
            let n = Notice::to(&"u1".into(), kind);
            assert_eq!(serde_json::from_value::<Notice>(serde_json::to_value(&n).unwrap()).unwrap(), n);
        }
        let lacking = serde_json::json!({"code": "message_failed", "audience": {"type": "participants"}});
        assert!(serde_json::from_value::<Notice>(lacking).is_err(), "a failure notice without its message");
    }
}
