//! `RecordIndex` on Amazon Athena: the officer's search runs as SQL over the archive bucket's
//! write-once objects themselves (the Glue table in template.yaml, partitioned by the day in
//! each object's name), so the archiver feeds nothing, and a search reads only the days of its
//! period. Words are folded in the query as `search::words` folds them.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_athena::types::{QueryExecutionContext, QueryExecutionState};
use time::{format_description::well_known::Rfc3339, OffsetDateTime};

use crate::archive::ArchiveRecord;
use crate::config::AthenaSearch;
use crate::domain::search::{millis, Filter, Hit};
use crate::domain::ConversationId;
use crate::ports::{IndexError, RecordIndex};

/// How long a search waits for Athena before it gives up (API Gateway answers at 30 s).
const DEADLINE: Duration = Duration::from_secs(25);

pub struct AthenaIndex {
    client: aws_sdk_athena::Client,
    search: AthenaSearch,
}

impl AthenaIndex {
    pub fn new(client: aws_sdk_athena::Client, search: AthenaSearch) -> AthenaIndex {
        AthenaIndex { client, search }
    }
}

/// The index as the functions that write or erase the archive see it on AWS (the archiver,
/// the retention sweep), which are not given Athena: the archive's objects are the index, so
/// there is nothing to add or forget; a search is not theirs to run.
pub struct ArchiveObjectsIndex;

#[async_trait]
impl RecordIndex for ArchiveObjectsIndex {
    async fn add(&self, _: &[ArchiveRecord]) -> Result<(), IndexError> {
        Ok(())
    }

    async fn forget(&self, _: &[ArchiveRecord]) -> Result<(), IndexError> {
        Ok(())
    }

    async fn search(&self, _: &Filter, _: Option<&[ConversationId]>) -> Result<Vec<Hit>, IndexError> {
        Err(IndexError("this function may not search the record".into()))
    }
}

fn failed(e: impl Into<crate::ports::Cause>) -> IndexError {
    IndexError(e.into())
}

/// `s` as a SQL string literal.
fn quoted(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The partition (`dt`, `yyyy/MM/dd`: the day in an object's name) of `t`.
fn day(t: OffsetDateTime) -> String {
    format!("{:04}/{:02}/{:02}", t.year(), u8::from(t.month()), t.day())
}

/// The query for `filter` among `threads`, over `table` (`"database"."table"`). A record is
/// archived in an object named by the day it was written, at most a day after its event (the
/// stream keeps a record 24 hours), so the partitions read run to the day after `to`. A record
/// two objects hold (a batch written again, or by a writer the chain refused) is one hit.
pub fn sql(table: &str, filter: &Filter, threads: Option<&[ConversationId]>) -> String {
    let mut wanted = vec![format!("at_ms BETWEEN {} AND {}", millis(filter.from), millis(filter.to))];
    for w in &filter.words {
        wanted.push(format!("contains(words, {})", quoted(w)));
    }
    if let Some(threads) = threads {
        let list: Vec<String> = threads.iter().map(|t| quoted(t.as_str())).collect();
        wanted.push(format!("conversation_id IN ({})", list.join(", ")));
    }
    if let Some(c) = &filter.after {
        let (thread, message) = (quoted(c.conversation_id.as_str()), quoted(c.message_id.as_str()));
        wanted.push(format!(
            "(at_ms < {ms} OR (at_ms = {ms} AND (conversation_id < {thread} OR (conversation_id = {thread} AND message_id < {message}))))",
            ms = c.at_ms
        ));
    }
    format!(
        "WITH m AS (\n\
         SELECT DISTINCT conversation_id, message_id, at, actor, details.kind AS kind, text_as_sent,\n\
         date_diff('millisecond', from_iso8601_timestamp('1970-01-01T00:00:00Z'), from_iso8601_timestamp(at)) AS at_ms,\n\
         regexp_split(regexp_replace(lower(normalize(coalesce(text_as_sent, ''), NFD)), '\\p{{Mn}}', ''), '[^\\p{{L}}\\p{{N}}]+') AS words\n\
         FROM {table}\n\
         WHERE dt BETWEEN {from} AND {to} AND kind = 'message' AND message_id IS NOT NULL)\n\
         SELECT conversation_id, message_id, at, actor, kind, text_as_sent FROM m\n\
         WHERE {wanted}\n\
         ORDER BY at_ms DESC, conversation_id DESC, message_id DESC\n\
         LIMIT {limit}",
        from = quoted(&day(filter.from)),
        to = quoted(&day(filter.to + time::Duration::days(1))),
        wanted = wanted.join("\n  AND "),
        limit = filter.limit + 1,
    )
}

/// A result row (`conversation_id, message_id, at, actor, kind, text_as_sent`) as a hit.
fn hit_of(row: &[Option<String>]) -> Option<Hit> {
    let at = OffsetDateTime::parse(row.get(2)?.as_deref()?, &Rfc3339).ok()?;
    Some(Hit {
        conversation_id: row.first()?.as_deref()?.into(),
        message_id: row.get(1)?.as_deref()?.into(),
        at,
        sender: row.get(3)?.clone()?,
        kind: row.get(4)?.clone().unwrap_or_else(|| "text".into()),
        text: row.get(5)?.clone(),
        seq: 0,
    })
}

#[async_trait]
impl RecordIndex for AthenaIndex {
    /// Athena reads the archive's objects themselves: nothing to add.
    async fn add(&self, _: &[ArchiveRecord]) -> Result<(), IndexError> {
        Ok(())
    }

    /// Nor to forget: an erased object is no longer read.
    async fn forget(&self, _: &[ArchiveRecord]) -> Result<(), IndexError> {
        Ok(())
    }

    async fn search(&self, filter: &Filter, threads: Option<&[ConversationId]>) -> Result<Vec<Hit>, IndexError> {
        let table = format!("\"{}\".\"{}\"", self.search.database, self.search.table);
        let started = self
            .client
            .start_query_execution()
            .query_string(sql(&table, filter, threads))
            .work_group(&self.search.workgroup)
            .query_execution_context(QueryExecutionContext::builder().database(&self.search.database).build())
            .send()
            .await
            .map_err(failed)?;
        let id = started.query_execution_id().ok_or_else(|| failed("Athena gave no query id"))?.to_string();
        let deadline = tokio::time::Instant::now() + DEADLINE;
        let mut pause = Duration::from_millis(100);
        loop {
            let got = self.client.get_query_execution().query_execution_id(&id).send().await.map_err(failed)?;
            let status = got.query_execution().and_then(|q| q.status());
            match status.and_then(|s| s.state()) {
                Some(QueryExecutionState::Succeeded) => break,
                Some(QueryExecutionState::Failed | QueryExecutionState::Cancelled) => {
                    let why = status.and_then(|s| s.state_change_reason()).unwrap_or("no reason given");
                    return Err(failed(format!("Athena query {id} did not succeed: {why}")));
                }
                _ if tokio::time::Instant::now() >= deadline => {
                    let _ = self.client.stop_query_execution().query_execution_id(&id).send().await;
                    return Err(failed(format!("Athena query {id} still running after {DEADLINE:?}")));
                }
                _ => {
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(1));
                }
            }
        }
        let mut hits = Vec::new();
        let mut token: Option<String> = None;
        let mut header = true;
        loop {
            let page = self
                .client
                .get_query_results()
                .query_execution_id(&id)
                .set_next_token(token.take())
                .send()
                .await
                .map_err(failed)?;
            for row in page.result_set().map(|r| r.rows()).unwrap_or_default() {
                // The first row of the first page names the columns.
                if std::mem::take(&mut header) {
                    continue;
                }
                let cells: Vec<Option<String>> =
                    row.data().iter().map(|d| d.var_char_value().map(str::to_string)).collect();
                hits.push(hit_of(&cells).ok_or_else(|| failed(format!("Athena query {id}: a row that is no hit")))?);
            }
            match page.next_token() {
                Some(t) => token = Some(t.to_string()),
                None => return Ok(hits),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::search::{Ask, Cursor};
    use time::macros::datetime;

    #[test]
    fn the_query_reads_the_period_s_days_folds_words_as_search_does_and_resumes_after_the_cursor() {
        let ask = Ask {
            q: Some("Café O'Brien".into()),
            from: Some("2026-12-01T00:00:00Z".into()),
            to: Some("2026-12-07T12:00:00Z".into()),
            limit: Some(10),
            ..Ask::default()
        };
        let mut filter = Filter::of(&ask, datetime!(2026-12-07 13:00 UTC)).unwrap();
        filter.after = Some(Cursor { at_ms: 1765000000000, conversation_id: "01C'X".into(), message_id: "01M".into() });
        let threads: Vec<ConversationId> = vec!["01A".into(), "01B".into()];
        let q = sql("\"db\".\"records\"", &filter, Some(&threads));
        assert!(q.contains("FROM \"db\".\"records\""), "{q}");
        assert!(q.contains("dt BETWEEN '2026/12/01' AND '2026/12/08'"), "the day after `to` too: {q}");
        assert!(q.contains("contains(words, 'cafe')") && q.contains("contains(words, 'o')"), "{q}");
        assert!(q.contains("contains(words, 'brien')"), "{q}");
        assert!(q.contains("normalize(coalesce(text_as_sent, ''), NFD)") && q.contains("'\\p{Mn}'"), "{q}");
        assert!(q.contains("conversation_id IN ('01A', '01B')"), "{q}");
        assert!(q.contains("at_ms BETWEEN 1796083200000 AND 1796644800000"), "{q}");
        assert!(q.contains("conversation_id < '01C''X'"), "a quote in an id stays inside its literal: {q}");
        assert!(q.contains("SELECT DISTINCT") && q.ends_with("LIMIT 11"), "{q}");
        assert!(!q.contains("text_as_written"), "never the original");
    }

    #[test]
    fn a_row_becomes_a_hit_and_a_row_without_an_id_or_time_is_refused() {
        let row = |at: &str| {
            vec![
                Some("01A".to_string()),
                Some("01M".to_string()),
                Some(at.to_string()),
                Some("contact".to_string()),
                Some("image".to_string()),
                None,
            ]
        };
        let h = hit_of(&row("2026-12-07T10:00:00.5Z")).unwrap();
        assert_eq!((h.conversation_id.as_str(), h.message_id.as_str()), ("01A", "01M"));
        assert_eq!(
            (h.at, h.sender.as_str(), h.kind.as_str(), h.text),
            (datetime!(2026-12-07 10:00:00.5 UTC), "contact", "image", None)
        );
        assert!(hit_of(&row("yesterday")).is_none());
        assert!(hit_of(&[None, None]).is_none());
    }
}
