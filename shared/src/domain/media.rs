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
