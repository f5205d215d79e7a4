//! `otpauth://totp/...` URIs (the Key Uri Format used by QR codes and authenticator apps).
//!
//! Parsed by hand rather than with a URL library so that the secret is only ever copied
//! into zeroizing buffers, and so that each mistake gets its own message.

use std::borrow::Cow;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use thiserror::Error;

use super::{Algorithm, OtpError, OtpParams, Seed, decode_base32, encode_base32};
use crate::secret::SecretString;

#[derive(Debug, Error, PartialEq, Eq)]
pub enum UriError {
    #[error(
        "not an otpauth URI: it should start with otpauth://totp/ (as in the QR code AWS shows)"
    )]
    NotOtpauth,
    #[error(
        "that is a Google Authenticator export (otpauth-migration://), which may hold several accounts: import it with `mfa-agent seed import -` (or `seed import --qr IMAGE`)"
    )]
    Migration,
    #[error(
        "HOTP (counter-based) seeds are not supported: AWS virtual MFA devices use TOTP (otpauth://totp/...)"
    )]
    Hotp,
    #[error("unknown OTP type {0:?} in the URI; only otpauth://totp/ is supported")]
    UnknownType(String),
    #[error("the URI has no secret= parameter; copy the whole URI")]
    MissingSecret,
    #[error("the URI's {param}= parameter is not valid: {value:?}")]
    BadParameter { param: &'static str, value: String },
    #[error("the URI's label or issuer is not valid UTF-8 after percent-decoding")]
    BadEncoding,
    #[error("the URI's secret is unusable: {0}")]
    Secret(OtpError),
    #[error("the URI's parameters are unusable: {0}")]
    Params(OtpError),
}

/// Parses an `otpauth://totp/[ISSUER:]ACCOUNT?secret=...` URI.
pub fn parse(uri: &str) -> Result<Seed, UriError> {
    let uri = uri.trim();
    let lower_prefix = uri
        .get(..uri.len().min(24))
        .unwrap_or("")
        .to_ascii_lowercase();
    if lower_prefix.starts_with("otpauth-migration:") {
        return Err(UriError::Migration);
    }
    let rest = strip_prefix_ignore_case(uri, "otpauth://").ok_or(UriError::NotOtpauth)?;
    let (kind, rest) = rest.split_once('/').unwrap_or((rest, ""));
    match kind.to_ascii_lowercase().as_str() {
        "totp" => {}
        "hotp" => return Err(UriError::Hotp),
        _ => return Err(UriError::UnknownType(kind.to_owned())),
    }
    let (label, query) = rest.split_once('?').unwrap_or((rest, ""));
    let label = decode_text(label)?;
    let (label_issuer, account) = match label.split_once(':') {
        Some((issuer, account)) => (Some(issuer.trim().to_owned()), account.trim().to_owned()),
        None => (None, label.trim().to_owned()),
    };

    let mut params = OtpParams::default();
    let mut secret = None;
    let mut issuer = label_issuer;
    for (key, value) in form_urlencoded_pairs(query) {
        match key.to_ascii_lowercase().as_str() {
            "secret" => {
                let value = SecretString::new(value.into_owned());
                secret = Some(decode_base32(value.expose()).map_err(UriError::Secret)?);
            }
            "issuer" => issuer = Some(value.into_owned()),
            "algorithm" => {
                params.algorithm = value.parse::<Algorithm>().map_err(UriError::Params)?;
            }
            "digits" => params.digits = parse_number(&value, "digits")?,
            "period" => params.period = parse_number(&value, "period")?,
            _ => {}
        }
    }
    let seed = Seed {
        params,
        issuer: issuer.filter(|i| !i.is_empty()),
        account: Some(account).filter(|a| !a.is_empty()),
        secret: secret.ok_or(UriError::MissingSecret)?,
    };
    seed.params.validate().map_err(UriError::Params)?;
    seed.validate().map_err(UriError::Secret)?;
    Ok(seed)
}

/// Formats a seed as an `otpauth://totp/` URI. The result holds the secret.
#[must_use]
pub fn format(seed: &Seed, fallback_account: &str) -> SecretString {
    // Everything but unreserved characters is escaped, as authenticator apps expect.
    const ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
        .remove(b'-')
        .remove(b'.')
        .remove(b'_')
        .remove(b'~');
    let account = utf8_percent_encode(seed.account.as_deref().unwrap_or(fallback_account), ESCAPE)
        .to_string();
    let issuer = seed
        .issuer
        .as_deref()
        .map(|issuer| utf8_percent_encode(issuer, ESCAPE).to_string());
    let p = seed.params;
    let params = format!(
        "&algorithm={}&digits={}&period={}",
        p.algorithm, p.digits, p.period
    );
    let secret = encode_base32(&seed.secret);
    // Sized first: a buffer that grew after the secret was in it would leave a copy in
    // freed memory, unwiped.
    let issuer_len = issuer
        .as_ref()
        .map_or(0, |i| 2 * i.len() + ":&issuer=".len());
    let mut out = String::with_capacity(
        "otpauth://totp/?secret=".len()
            + issuer_len
            + account.len()
            + secret.expose().len()
            + params.len(),
    );
    let capacity = out.capacity();
    out.push_str("otpauth://totp/");
    if let Some(issuer) = &issuer {
        out.push_str(issuer);
        out.push(':');
    }
    out.push_str(&account);
    out.push_str("?secret=");
    out.push_str(secret.expose());
    if let Some(issuer) = &issuer {
        out.push_str("&issuer=");
        out.push_str(issuer);
    }
    out.push_str(&params);
    debug_assert_eq!(out.capacity(), capacity, "the URI outgrew its buffer");
    SecretString::new(out)
}

fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    head.eq_ignore_ascii_case(prefix)
        .then(|| &s[prefix.len()..])
}

fn decode_text(s: &str) -> Result<String, UriError> {
    percent_decode_str(s)
        .decode_utf8()
        .map(Cow::into_owned)
        .map_err(|_| UriError::BadEncoding)
}

/// Splits a query string into decoded pairs (`+` means space, as in forms).
fn form_urlencoded_pairs(query: &str) -> impl Iterator<Item = (String, Cow<'_, str>)> {
    query.split('&').filter(|p| !p.is_empty()).map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &'_ str| -> String {
            let spaced = s.replace('+', " ");
            percent_decode_str(&spaced).decode_utf8_lossy().into_owned()
        };
        let value = if v.contains(['%', '+']) {
            Cow::Owned(decode(v))
        } else {
            Cow::Borrowed(v)
        };
        (decode(k), value)
    })
}

fn parse_number<T: std::str::FromStr>(value: &str, param: &'static str) -> Result<T, UriError> {
    value.trim().parse().map_err(|_| UriError::BadParameter {
        param,
        value: value.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const AWS_SECRET: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

    #[test]
    fn parses_an_aws_console_uri() {
        let uri = format!(
            "otpauth://totp/Amazon%20Web%20Services:alice@123456789012?secret={AWS_SECRET}&issuer=Amazon%20Web%20Services"
        );
        let seed = parse(&uri).unwrap();
        assert_eq!(seed.issuer.as_deref(), Some("Amazon Web Services"));
        assert_eq!(seed.account.as_deref(), Some("alice@123456789012"));
        assert_eq!(seed.params, OtpParams::default());
        assert_eq!(seed.secret.len(), 40);
    }

    #[test]
    fn honours_algorithm_digits_period_and_lowercase_secret() {
        let seed = parse(
            "otpauth://totp/bob?secret=gezdgnbvgy3tqojqgezdgnbvgy3tqojq&algorithm=SHA512&digits=8&period=60",
        )
        .unwrap();
        assert_eq!(
            seed.params,
            OtpParams {
                algorithm: Algorithm::Sha512,
                digits: 8,
                period: 60
            }
        );
        assert_eq!(seed.issuer, None);
        assert_eq!(seed.secret.expose(), b"12345678901234567890");
    }

    #[test]
    fn format_then_parse_round_trips() {
        let original = parse(&format!(
            "otpauth://totp/Acme%20Co:me%40example.com?secret={AWS_SECRET}&digits=7"
        ))
        .unwrap();
        let uri = format(&original, "unused");
        assert!(
            uri.expose()
                .starts_with("otpauth://totp/Acme%20Co:me%40example.com?secret=")
        );
        let again = parse(uri.expose()).unwrap();
        assert_eq!(again.params, original.params);
        assert_eq!(again.issuer, original.issuer);
        assert_eq!(again.account, original.account);
        assert_eq!(again.secret.expose(), original.secret.expose());
    }

    #[test]
    fn each_mistake_has_its_own_error() {
        assert_eq!(
            parse("https://example.com").unwrap_err(),
            UriError::NotOtpauth
        );
        assert_eq!(
            parse("otpauth://hotp/x?secret=AAAA&counter=1").unwrap_err(),
            UriError::Hotp
        );
        assert_eq!(
            parse("otpauth-migration://offline?data=xx").unwrap_err(),
            UriError::Migration
        );
        assert_eq!(
            parse("otpauth://totp/x?issuer=a").unwrap_err(),
            UriError::MissingSecret
        );
        // 80 bits (16 characters) is taken, as authenticator apps take it; 40 is not.
        assert_eq!(
            parse("otpauth://totp/x?secret=JBSWY3DPEHPK3PXP")
                .unwrap()
                .secret
                .len(),
            10
        );
        assert!(matches!(
            parse("otpauth://totp/x?secret=JBSWY3DP").unwrap_err(),
            UriError::Secret(OtpError::SecretTooShort { bits: 40 })
        ));
        assert!(matches!(
            parse(&format!("otpauth://totp/x?secret={AWS_SECRET}&digits=ten")).unwrap_err(),
            UriError::BadParameter {
                param: "digits",
                ..
            }
        ));
        assert!(matches!(
            parse(&format!(
                "otpauth://totp/x?secret={AWS_SECRET}&algorithm=MD5"
            ))
            .unwrap_err(),
            UriError::Params(OtpError::UnknownAlgorithm(_))
        ));
    }
}
