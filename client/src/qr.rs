//! QR codes: reading the one AWS shows when a virtual MFA device is created, and writing one
//! for `seed export --qr`.

use std::io::Cursor;
use std::path::Path;

use image::{ImageFormat, Luma};
use qrcode::{EcLevel, QrCode};
use thiserror::Error;

use crate::secret::{SecretBytes, SecretString};

/// Whether `text` is a Google Authenticator export link (a QR code of one holds seeds, too).
#[must_use]
pub fn is_migration(text: &str) -> bool {
    text.trim()
        .get(..18)
        .is_some_and(|p| p.eq_ignore_ascii_case("otpauth-migration:"))
}

#[derive(Debug, Error)]
pub enum QrError {
    #[error("failed to read the image {path}: {cause}; give a PNG or JPEG file")]
    Image {
        path: String,
        cause: image::ImageError,
    },
    #[error(
        "no QR code found in {path}; crop the image around the code, or paste the secret with --secret - instead"
    )]
    NotFound { path: String },
    #[error(
        "the QR code in {path} could not be decoded; take a sharper screenshot, or paste the secret with --secret - instead"
    )]
    Unreadable { path: String },
    #[error("failed to draw the QR code: {0}")]
    Encode(String),
}

/// Reads the text of the first QR code in the image at `path`.
pub fn decode_file(path: &Path) -> Result<SecretString, QrError> {
    let shown = path.display().to_string();
    let image = image::open(path).map_err(|cause| QrError::Image {
        path: shown.clone(),
        cause,
    })?;
    let mut prepared = rqrr::PreparedImage::prepare(image.to_luma8());
    let grids = prepared.detect_grids();
    let grid = grids.first().ok_or_else(|| QrError::NotFound {
        path: shown.clone(),
    })?;
    let mut text = Vec::new();
    grid.decode_to(&mut text).map_err(|_| QrError::Unreadable {
        path: shown.clone(),
    })?;
    let text = SecretBytes::new(text);
    let text =
        std::str::from_utf8(text.expose()).map_err(|_| QrError::Unreadable { path: shown })?;
    Ok(SecretString::new(text.to_owned()))
}

/// Draws `text` as a QR code and encodes it as PNG bytes.
pub fn encode_png(text: &SecretString) -> Result<SecretBytes, QrError> {
    let code = QrCode::with_error_correction_level(text.expose().as_bytes(), EcLevel::M)
        .map_err(|e| QrError::Encode(e.to_string()))?;
    let image = code.render::<Luma<u8>>().min_dimensions(320, 320).build();
    let mut png = Cursor::new(Vec::new());
    image
        .write_to(&mut png, ImageFormat::Png)
        .map_err(|e| QrError::Encode(e.to_string()))?;
    Ok(SecretBytes::new(png.into_inner()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_then_decode_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("code.png");
        let text =
            SecretString::new("otpauth://totp/x?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ".into());
        std::fs::write(&path, encode_png(&text).unwrap().expose()).unwrap();
        assert_eq!(decode_file(&path).unwrap().expose(), text.expose());
    }

    #[test]
    fn an_image_without_a_code_is_not_found() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blank.png");
        image::GrayImage::from_pixel(64, 64, Luma([255]))
            .save(&path)
            .unwrap();
        assert!(matches!(decode_file(&path), Err(QrError::NotFound { .. })));
        let garbage = dir.path().join("garbage.png");
        std::fs::write(&garbage, b"not a png").unwrap();
        assert!(matches!(decode_file(&garbage), Err(QrError::Image { .. })));
    }
}
