//! What S3 answers in XML, read into what the checks use: a `ListObjectsV2` page (keys,
//! sizes, modification times, the continuation token) and an error's code and message, and
//! an error classified into a bounded reason.

use chrono::DateTime;
use percent_encoding::percent_decode_str;
use serde::Deserialize;

use crate::series::run_error::Reason;

/// One object of a listing.
#[derive(Debug, PartialEq)]
pub(super) struct Object {
    /// Its key, decoded (listings ask for `encoding-type=url`, so that a key holding
    /// characters XML 1.0 cannot carry still lists).
    pub key: String,
    /// Its size in bytes.
    pub size: i64,
    /// When it was last written, Unix seconds.
    pub last_modified: Option<i64>,
}

/// One page of `ListObjectsV2`.
#[derive(Debug, Default, PartialEq)]
pub(super) struct ListPage {
    pub objects: Vec<Object>,
    /// The token of the next page, when the listing goes on.
    pub next: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct ListBucketResult {
    #[serde(default)]
    contents: Vec<Contents>,
    #[serde(default)]
    is_truncated: bool,
    next_continuation_token: Option<String>,
    encoding_type: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct Contents {
    key: String,
    #[serde(default)]
    size: i64,
    last_modified: Option<String>,
}

/// A `ListObjectsV2` answer, or why it cannot be read.
pub(super) fn list_page(body: &[u8]) -> Result<ListPage, String> {
    let text = std::str::from_utf8(body).map_err(|e| format!("the listing is not UTF-8: {e}"))?;
    let r: ListBucketResult =
        quick_xml::de::from_str(text).map_err(|e| format!("unreadable listing: {e}"))?;
    // A server that ignores `encoding-type` says so by not echoing it: its keys are as stored.
    let encoded = r.encoding_type.as_deref() == Some("url");
    let objects = r
        .contents
        .into_iter()
        .map(|c| Object {
            key: if encoded {
                percent_decode_str(&c.key).decode_utf8_lossy().into_owned()
            } else {
                c.key
            },
            size: c.size,
            last_modified: c
                .last_modified
                .and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                .map(|t| t.timestamp()),
        })
        .collect();
    let next = r.next_continuation_token.filter(|_| r.is_truncated);
    Ok(ListPage { objects, next })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "PascalCase")]
struct ErrorBody {
    #[serde(default)]
    code: String,
    #[serde(default)]
    message: String,
}

/// The `Code` and `Message` of an S3 error answer; empty where the body is not one (a `HEAD`
/// answers no body, a proxy answers HTML).
pub(super) fn error_code(body: &[u8]) -> (String, String) {
    let e: ErrorBody = std::str::from_utf8(body)
        .ok()
        .and_then(|t| quick_xml::de::from_str(t).ok())
        .unwrap_or_default();
    (e.code, e.message)
}

/// The reason of an S3 error: by its code where S3 sent one, else by the HTTP status.
pub(super) fn reason(status: u16, code: &str) -> Reason {
    match (code, status) {
        (
            "AccessDenied"
            | "InvalidAccessKeyId"
            | "SignatureDoesNotMatch"
            | "ExpiredToken"
            | "InvalidToken",
            _,
        )
        | (_, 401 | 403) => Reason::Auth,
        ("NoSuchBucket" | "NoSuchKey" | "NotFound", _) | (_, 404) => Reason::NotFound,
        (_, 500..=599) => Reason::Upstream,
        _ => Reason::Query,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn s3_errors_are_classified_by_code_then_status() {
        for (status, code, want) in [
            (403, "AccessDenied", Reason::Auth),
            (400, "InvalidAccessKeyId", Reason::Auth),
            (403, "SignatureDoesNotMatch", Reason::Auth),
            (400, "ExpiredToken", Reason::Auth),
            (401, "", Reason::Auth),
            (404, "NoSuchBucket", Reason::NotFound),
            (404, "", Reason::NotFound),
            (400, "NoSuchKey", Reason::NotFound),
            (503, "SlowDown", Reason::Upstream),
            (500, "InternalError", Reason::Upstream),
            (400, "InvalidBucketName", Reason::Query),
            (301, "PermanentRedirect", Reason::Query),
        ] {
            assert_eq!(reason(status, code), want, "{status} {code}");
        }
    }

    #[test]
    fn an_error_body_gives_its_code_and_anything_else_gives_none() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<Error><Code>NoSuchBucket</Code><Message>The specified bucket does not exist</Message><BucketName>x</BucketName></Error>"#;
        assert_eq!(
            error_code(body),
            (
                "NoSuchBucket".to_owned(),
                "The specified bucket does not exist".to_owned()
            )
        );
        for junk in [
            &b""[..],
            b"<html>502 Bad Gateway</html>",
            b"\xff\xfe",
            b"<Error>",
        ] {
            assert_eq!(error_code(junk), (String::new(), String::new()));
        }
    }

    #[test]
    fn a_listing_page_gives_keys_sizes_times_and_the_next_token() {
        let body = br#"<?xml version="1.0" encoding="UTF-8"?>
<ListBucketResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">
  <Name>media</Name><Prefix>uploads%2F</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>
  <EncodingType>url</EncodingType><IsTruncated>true</IsTruncated>
  <Contents><Key>uploads/a%20b.jpg</Key><LastModified>2026-11-28T10:00:00.000Z</LastModified>
    <ETag>"x"</ETag><Size>10</Size><StorageClass>STANDARD</StorageClass></Contents>
  <Contents><Key>uploads/%01ctl%E2%82%AC</Key><Size>3</Size></Contents>
  <NextContinuationToken>1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=</NextContinuationToken>
</ListBucketResult>"#;
        let page = list_page(body).unwrap();
        assert_eq!(
            page,
            ListPage {
                objects: vec![
                    Object {
                        key: "uploads/a b.jpg".to_owned(),
                        size: 10,
                        last_modified: Some(1_795_860_000),
                    },
                    Object {
                        key: "uploads/\u{1}ctl€".to_owned(),
                        size: 3,
                        last_modified: None,
                    },
                ],
                next: Some("1ueGcxLPRx1Tr/XYExHnhbYLgveDs2J/wm36Hy4vbOwM=".to_owned()),
            }
        );
        // The last page, from a server that ignored `encoding-type`, and an empty prefix.
        let last = br#"<ListBucketResult><IsTruncated>false</IsTruncated><Contents><Key>a%b</Key><Size>1</Size></Contents><NextContinuationToken>stale</NextContinuationToken></ListBucketResult>"#;
        let page = list_page(last).unwrap();
        assert_eq!(page.objects[0].key, "a%b");
        assert_eq!(page.next, None);
        let empty = list_page(b"<ListBucketResult><KeyCount>0</KeyCount></ListBucketResult>");
        assert_eq!(empty.unwrap(), ListPage::default());
        assert!(list_page(b"<html>").is_err());
        assert!(list_page(b"\xff").unwrap_err().contains("not UTF-8"));
    }
}
