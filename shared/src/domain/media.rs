//! Files: which bytes are a JPEG or a PNG (by their magic bytes, whatever the label says), and
//! the limits Meta sets for each kind of file, both ways.

use serde::{Deserialize, Serialize};

use super::message::FileKind;

/// Meta's limit for images, both ways.
pub const MAX_IMAGE_BYTES: usize = 5 * 1024 * 1024;

/// Meta's limit for a file of `kind`, both ways: image 5 MB, sticker 500 KB, audio and video
/// 16 MB, document 100 MB.
pub fn max_bytes(kind: FileKind) -> usize {
    const MB: usize = 1024 * 1024;
    match kind {
        FileKind::Image => MAX_IMAGE_BYTES,
        FileKind::Sticker => 500 * 1024,
        FileKind::Audio | FileKind::Video => 16 * MB,
        FileKind::Document => 100 * MB,
    }
}
/// Longest caption Meta accepts, in characters.
pub const MAX_CAPTION_CHARS: usize = 1024;

/// The MIME types WhatsApp takes, each with its kind of file (Meta's media documentation).
const ACCEPTED: [(&str, FileKind); 18] = [
    ("image/jpeg", FileKind::Image),
    ("image/png", FileKind::Image),
    ("image/webp", FileKind::Sticker),
    ("audio/aac", FileKind::Audio),
    ("audio/amr", FileKind::Audio),
    ("audio/mpeg", FileKind::Audio),
    ("audio/mp4", FileKind::Audio),
    ("audio/ogg", FileKind::Audio),
    ("video/mp4", FileKind::Video),
    ("video/3gpp", FileKind::Video),
    ("text/plain", FileKind::Document),
    ("application/pdf", FileKind::Document),
    ("application/msword", FileKind::Document),
    ("application/vnd.ms-excel", FileKind::Document),
    ("application/vnd.ms-powerpoint", FileKind::Document),
    ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", FileKind::Document),
    ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", FileKind::Document),
    ("application/vnd.openxmlformats-officedocument.presentationml.presentation", FileKind::Document),
];

/// `mime` as WhatsApp takes it (its essence, lower-case; `audio/ogg` keeps `codecs=opus`),
/// with its kind; `None` for a type WhatsApp does not take.
pub fn accepted(mime: &str) -> Option<(FileKind, String)> {
    let essence = mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let essence = match essence.as_str() {
        "image/jpg" => "image/jpeg".to_string(),
        "video/3gp" => "video/3gpp".to_string(),
        _ => essence,
    };
    let (_, kind) = ACCEPTED.iter().find(|(m, _)| *m == essence)?;
    Some((*kind, if essence == "audio/ogg" { "audio/ogg; codecs=opus".into() } else { essence }))
}

/// A short, stable code for each type WhatsApp takes (its place in the list above), and back.
pub fn type_code(mime: &str) -> Option<usize> {
    let (_, m) = accepted(mime)?;
    ACCEPTED.iter().position(|(a, _)| m.split(';').next() == Some(*a))
}

pub fn type_of_code(code: usize) -> Option<&'static str> {
    ACCEPTED.get(code).map(|(m, _)| *m)
}

/// What the bytes are by their signature, as a family of formats: enough to refuse a file
/// whose label lies, and to name a picture by what it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Signature {
    Jpeg,
    Png,
    Webp,
    Pdf,
    Ogg,
    Amr,
    /// MP4, M4A and 3GPP: one container, audio or video.
    IsoMedia,
    /// DOCX, XLSX, PPTX.
    Zip,
    /// DOC, XLS, PPT.
    Ole,
}

fn signature(bytes: &[u8]) -> Option<Signature> {
    let at = |offset: usize, magic: &[u8]| bytes.get(offset..offset + magic.len()) == Some(magic);
    Some(match () {
        _ if at(0, &[0xFF, 0xD8, 0xFF]) => Signature::Jpeg,
        _ if at(0, &[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) => Signature::Png,
        _ if at(0, b"RIFF") && at(8, b"WEBP") => Signature::Webp,
        _ if at(0, b"%PDF-") => Signature::Pdf,
        _ if at(0, b"OggS") => Signature::Ogg,
        _ if at(0, b"#!AMR") => Signature::Amr,
        _ if at(4, b"ftyp") => Signature::IsoMedia,
        _ if at(0, b"PK\x03\x04") => Signature::Zip,
        _ if at(0, &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1]) => Signature::Ole,
        _ => return None,
    })
}

/// The signature a type's bytes must have; `None` where the format has none to check
/// (plain text, AAC and MP3 streams).
fn expected(mime: &str) -> Option<&'static [Signature]> {
    Some(match mime {
        "image/jpeg" => &[Signature::Jpeg],
        "image/png" => &[Signature::Png],
        "image/webp" => &[Signature::Webp],
        "application/pdf" => &[Signature::Pdf],
        "audio/ogg; codecs=opus" => &[Signature::Ogg],
        "audio/amr" => &[Signature::Amr],
        "audio/mp4" | "video/mp4" | "video/3gpp" => &[Signature::IsoMedia],
        "application/msword" | "application/vnd.ms-excel" | "application/vnd.ms-powerpoint" => &[Signature::Ole],
        m if m.starts_with("application/vnd.openxmlformats") => &[Signature::Zip],
        _ => return None,
    })
}

/// Why a file is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over its kind's limit, in bytes.
    TooLarge(usize),
    Unsupported(String),
}

/// A file labelled `declared`, checked as WhatsApp would take it: a type it takes, bytes that
/// are what the label says (a picture is named by what its bytes are: a PNG labelled JPEG is
/// a PNG), and within its kind's limit. Returns its kind and type.
pub fn check(declared: Option<&str>, bytes: &[u8]) -> Result<(FileKind, String), Refusal> {
    check_head(declared, bytes, bytes.len() as u64)
}

/// `check` on a file of `size` bytes that begins with `head` (its first 64 bytes are enough).
pub fn check_head(declared: Option<&str>, bytes: &[u8], size: u64) -> Result<(FileKind, String), Refusal> {
    let declared = declared.unwrap_or("");
    let (kind, mime) = accepted(declared)
        .ok_or_else(|| Refusal::Unsupported(format!("WhatsApp does not take files of type {declared:?}")))?;
    let mime = match (ImageType::sniff(bytes), kind) {
        (Some(real), FileKind::Image) => real.mime().to_string(),
        _ => mime,
    };
    if let Some(want) = expected(&mime) {
        if !signature(bytes).is_some_and(|s| want.contains(&s)) {
            return Err(Refusal::Unsupported(format!("the bytes are not a {mime} file")));
        }
    }
    if size > max_bytes(kind) as u64 {
        return Err(Refusal::TooLarge(max_bytes(kind)));
    }
    Ok((kind, mime))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ImageType {
    #[serde(rename = "image/jpeg")]
    Jpeg,
    #[serde(rename = "image/png")]
    Png,
}

impl ImageType {
    pub fn mime(self) -> &'static str {
        match self {
            ImageType::Jpeg => "image/jpeg",
            ImageType::Png => "image/png",
        }
    }

    pub fn from_mime(mime: &str) -> Option<ImageType> {
        match mime.split(';').next().unwrap_or("").trim().to_ascii_lowercase().as_str() {
            "image/jpeg" | "image/jpg" => Some(ImageType::Jpeg),
            "image/png" => Some(ImageType::Png),
            _ => None,
        }
    }

    /// The type the bytes really are, by their signature.
    pub fn sniff(bytes: &[u8]) -> Option<ImageType> {
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Some(ImageType::Jpeg)
        } else if bytes.starts_with(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A]) {
            Some(ImageType::Png)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_taken_for_what_its_bytes_are_within_its_kinds_limit() {
        let png = [0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0];
        assert_eq!(check(Some("image/jpeg"), &png), Ok((FileKind::Image, "image/png".into())), "named by its bytes");
        assert_eq!(check(Some("application/pdf"), b"%PDF-1.7"), Ok((FileKind::Document, "application/pdf".into())));
        assert_eq!(check(Some("text/plain; charset=utf-8"), b"hello"), Ok((FileKind::Document, "text/plain".into())));
        assert_eq!(
            check(Some("audio/ogg"), b"OggS\0"),
            Ok((FileKind::Audio, "audio/ogg; codecs=opus".into())),
            "WhatsApp's voice notes are Opus"
        );
        assert_eq!(check(Some("audio/mpeg"), b"ID3\x04"), Ok((FileKind::Audio, "audio/mpeg".into())));
        let mp4 = b"\0\0\0\x18ftypmp42";
        assert_eq!(check(Some("video/mp4"), mp4), Ok((FileKind::Video, "video/mp4".into())));
        assert_eq!(check(Some("audio/mp4"), mp4), Ok((FileKind::Audio, "audio/mp4".into())));
        assert_eq!(check(Some("image/webp"), b"RIFF\0\0\0\0WEBPVP8 "), Ok((FileKind::Sticker, "image/webp".into())));
        let docx = "application/vnd.openxmlformats-officedocument.wordprocessingml.document";
        assert!(check(Some(docx), b"PK\x03\x04").is_ok());
        let pptx = "application/vnd.openxmlformats-officedocument.presentationml.presentation";
        assert!(check(Some(pptx), b"PK\x03\x04").is_ok());

        for (label, bytes) in [
            ("application/pdf", &png[..]),
            ("image/png", b"%PDF-1.7"),
            ("video/mp4", b"OggS"),
            ("image/gif", b"GIF89a"),
            ("application/zip", b"PK\x03\x04"),
            ("", b"x"),
        ] {
            assert!(matches!(check(Some(label), bytes), Err(Refusal::Unsupported(_))), "{label}");
        }
        let big_sticker = [b"RIFF\0\0\0\0WEBP".as_slice(), &vec![0; 500 * 1024]].concat();
        assert_eq!(check(Some("image/webp"), &big_sticker), Err(Refusal::TooLarge(500 * 1024)));
    }

    #[test]
    fn every_accepted_type_has_a_code_that_reads_back() {
        for (mime, _) in ACCEPTED {
            let code = type_code(mime).unwrap();
            assert_eq!(type_of_code(code), Some(mime));
        }
        assert_eq!(type_code("audio/ogg; codecs=opus"), type_code("audio/ogg"));
        assert_eq!((type_code("image/gif"), type_of_code(ACCEPTED.len())), (None, None));
    }

    #[test]
    fn each_kind_has_metas_limit() {
        let limits: Vec<usize> = FileKind::ALL.into_iter().map(max_bytes).collect();
        assert_eq!(limits, [5 << 20, 100 << 20, 16 << 20, 16 << 20, 500 << 10]);
    }

    #[test]
    fn sniffs_by_signature_not_label() {
        assert_eq!(ImageType::sniff(&[0xFF, 0xD8, 0xFF, 0xE0, 0, 0]), Some(ImageType::Jpeg));
        assert_eq!(ImageType::sniff(b"\\x89PNG\\r\\n\\x1a\\n"), None);
        assert_eq!(ImageType::sniff(&[0x89, b'P', b'N', b'G', 0x0D, 0x0A, 0x1A, 0x0A, 0]), Some(ImageType::Png));
        assert_eq!(ImageType::sniff(b"GIF89a"), None);
        assert_eq!(ImageType::sniff(b""), None);
        assert_eq!(ImageType::from_mime("image/JPEG; q=1"), Some(ImageType::Jpeg));
        assert_eq!(ImageType::from_mime("image/gif"), None);
    }
}
