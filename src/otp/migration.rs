//! Google Authenticator's export: `otpauth-migration://offline?data=BASE64`, a protobuf
//! `MigrationPayload` holding one or more accounts (the only way that app exports). The
//! message is declared here with prost, as the app's format has it.

use std::borrow::Cow;

use base64::Engine as _;
use percent_encoding::percent_decode_str;
use thiserror::Error;
use zeroize::Zeroize as _;

use super::{Algorithm, OtpError, OtpParams, Seed};
use crate::secret::SecretBytes;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum MigrationError {
    #[error(
        "not a Google Authenticator export: it should start with otpauth-migration://offline?data="
    )]
    NotMigration,
    #[error(
        "the export's data= is not valid base64 ({0}); copy the whole link, or scan the QR code again"
    )]
    Base64(String),
    #[error(
        "the export's data does not decode ({0}); copy the whole link, or scan the QR code again"
    )]
    Protobuf(String),
    #[error("the export holds no accounts")]
    Empty,
    #[error("account {account:?} of the export is unusable: {reason}")]
    Account { account: String, reason: String },
    #[error("no account of the export can be used ({0})")]
    NoUsable(String),
}

#[derive(Clone, PartialEq, prost::Message)]
struct MigrationPayload {
    #[prost(message, repeated, tag = "1")]
    otp_parameters: Vec<OtpParameters>,
    #[prost(int32, tag = "2")]
    version: i32,
    #[prost(int32, tag = "3")]
    batch_size: i32,
    #[prost(int32, tag = "4")]
    batch_index: i32,
}

#[derive(Clone, PartialEq, prost::Message)]
struct OtpParameters {
    #[prost(bytes = "vec", tag = "1")]
    secret: Vec<u8>,
    #[prost(string, tag = "2")]
    name: String,
    #[prost(string, tag = "3")]
    issuer: String,
    /// 0 unspecified (SHA1), 1 SHA1, 2 SHA256, 3 SHA512, 4 MD5.
    #[prost(int32, tag = "4")]
    algorithm: i32,
    /// 0 unspecified (6), 1 six, 2 eight.
    #[prost(int32, tag = "5")]
    digits: i32,
    /// 0 unspecified, 1 HOTP, 2 TOTP.
    #[prost(int32, tag = "6")]
    otp_type: i32,
}

impl Drop for OtpParameters {
    fn drop(&mut self) {
        self.secret.zeroize();
    }
}

pub use mfa_agent_client::qr::is_migration;

/// Every account of an export link. All or nothing: an account that cannot be used (an
/// HOTP counter, MD5) fails the whole link, so that nothing is stored from it half.
pub fn parse(link: &str) -> Result<Export, MigrationError> {
    const PREFIX: &str = "otpauth-migration://offline?";
    let link = link.trim();
    let rest = link
        .get(..PREFIX.len())
        .filter(|p| p.eq_ignore_ascii_case(PREFIX))
        .map(|_| &link[PREFIX.len()..])
        .ok_or(MigrationError::NotMigration)?;
    let data = rest
        .split('&')
        .find_map(|pair| pair.strip_prefix("data="))
        .ok_or(MigrationError::NotMigration)?;
    let data: Cow<'_, str> = percent_decode_str(data)
        .decode_utf8()
        .map_err(|e| MigrationError::Base64(e.to_string()))?;
    // The app writes standard base64; a link passed through a URL shortener or a chat may
    // come back URL-safe or without padding.
    let cleaned: String = data
        .trim_end_matches('=')
        .chars()
        .map(|c| match c {
            // A "+" that went through form decoding comes back as a space.
            '-' | ' ' => '+',
            '_' => '/',
            c => c,
        })
        .collect();
    let mut bytes = base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(cleaned.as_bytes())
        .map_err(|e| MigrationError::Base64(e.to_string()))?;
    let decoded = <MigrationPayload as prost::Message>::decode(bytes.as_slice());
    bytes.zeroize();
    let payload = decoded.map_err(|e| MigrationError::Protobuf(e.to_string()))?;
    if payload.otp_parameters.is_empty() {
        return Err(MigrationError::Empty);
    }
    let mut export = Export::default();
    for account in &payload.otp_parameters {
        match seed_of(account) {
            Ok(seed) => export.seeds.push(seed),
            Err(skipped) => export.skipped.push(skipped),
        }
    }
    if export.seeds.is_empty() {
        return Err(MigrationError::NoUsable(
            export
                .skipped
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("; "),
        ));
    }
    Ok(export)
}

/// What an export link holds: the accounts that can be used, and why each other one
/// cannot (an HOTP counter, MD5): one unusable account does not hold back the rest.
#[derive(Debug, Default)]
pub struct Export {
    pub seeds: Vec<Seed>,
    pub skipped: Vec<MigrationError>,
}

fn seed_of(account: &OtpParameters) -> Result<Seed, MigrationError> {
    let unusable = |reason: String| MigrationError::Account {
        account: account.name.clone(),
        reason,
    };
    match account.otp_type {
        0 | 2 => {}
        1 => {
            return Err(unusable(
                "it is an HOTP (counter) account; AWS virtual MFA devices use TOTP".into(),
            ));
        }
        other => return Err(unusable(format!("unknown OTP type {other}"))),
    }
    let algorithm = match account.algorithm {
        0 | 1 => Algorithm::Sha1,
        2 => Algorithm::Sha256,
        3 => Algorithm::Sha512,
        4 => return Err(unusable("MD5 is not supported".into())),
        other => return Err(unusable(format!("unknown algorithm {other}"))),
    };
    let digits = match account.digits {
        0 | 1 => 6,
        2 => 8,
        other => return Err(unusable(format!("unknown digit count {other}"))),
    };
    // The name is "issuer:account" or just the account, as in an otpauth:// label.
    let name = account.name.as_str();
    let (prefix, name) = match name.split_once(':') {
        Some((prefix, rest)) => (Some(prefix.trim()), rest.trim()),
        None => (None, name.trim()),
    };
    let issuer = Some(account.issuer.trim())
        .filter(|i| !i.is_empty())
        .or(prefix)
        .map(str::to_owned);
    let seed = Seed {
        params: OtpParams {
            algorithm,
            digits,
            period: 30,
        },
        issuer,
        account: Some(name.to_owned()).filter(|n| !n.is_empty()),
        secret: SecretBytes::new(account.secret.clone()),
    };
    seed.validate()
        .map_err(|e: OtpError| unusable(e.to_string()))?;
    Ok(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(accounts: Vec<OtpParameters>) -> String {
        let payload = MigrationPayload {
            otp_parameters: accounts,
            version: 1,
            batch_size: 1,
            batch_index: 0,
        };
        let bytes = prost::Message::encode_to_vec(&payload);
        let data = base64::engine::general_purpose::STANDARD.encode(bytes);
        format!(
            "otpauth-migration://offline?data={}",
            percent_encoding::utf8_percent_encode(&data, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    fn account(name: &str, issuer: &str, otp_type: i32, algorithm: i32) -> OtpParameters {
        OtpParameters {
            secret: b"12345678901234567890".to_vec(),
            name: name.into(),
            issuer: issuer.into(),
            algorithm,
            digits: 1,
            otp_type,
        }
    }

    #[test]
    fn every_account_comes_out_with_its_labels() {
        let seeds = parse(&link(vec![
            account("Amazon Web Services:alice@123456789012", "", 2, 1),
            account("bob", "GitHub", 2, 2),
        ]))
        .unwrap()
        .seeds;
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[0].issuer.as_deref(), Some("Amazon Web Services"));
        assert_eq!(seeds[0].account.as_deref(), Some("alice@123456789012"));
        assert_eq!(seeds[1].issuer.as_deref(), Some("GitHub"));
        assert_eq!(seeds[1].params.algorithm, Algorithm::Sha256);
        assert_eq!(seeds[0].secret.expose(), b"12345678901234567890");
    }

    #[test]
    fn an_unusable_account_is_skipped_with_its_reason_and_broken_data_fails_the_link() {
        let mut short = account("old-site", "", 2, 1);
        short.secret = b"1234567890".to_vec();
        let export = parse(&link(vec![
            account("ok", "", 2, 1),
            account("counter", "", 1, 1),
            short,
        ]))
        .unwrap();
        let names: Vec<_> = export.seeds.iter().map(|s| s.account.clone()).collect();
        assert_eq!(names, [Some("ok".into()), Some("old-site".into())]);
        assert_eq!(
            export.seeds[1].secret.len(),
            10,
            "an 80-bit secret is taken"
        );
        assert_eq!(export.skipped.len(), 1);
        let skipped = export.skipped[0].to_string();
        assert!(
            skipped.contains("\"counter\"") && skipped.contains("HOTP"),
            "{skipped}"
        );
        let err = parse(&link(vec![account("md5", "", 2, 4)])).unwrap_err();
        assert!(matches!(err, MigrationError::NoUsable(_)), "{err}");
        assert!(err.to_string().contains("MD5"), "{err}");
        assert!(matches!(
            parse("otpauth-migration://offline?data=%%%"),
            Err(MigrationError::Base64(_))
        ));
        assert!(matches!(
            parse("otpauth-migration://offline?data=AAAA"),
            Err(MigrationError::Protobuf(_) | MigrationError::Empty)
        ));
        assert!(matches!(parse(&link(vec![])), Err(MigrationError::Empty)));
        assert!(is_migration("OTPAUTH-MIGRATION://offline?data=x"));
    }
}
