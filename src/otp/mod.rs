//! TOTP seeds and the codes they generate (RFC 6238), computed by totp-rs.

mod base32;
pub mod migration;
pub use mfa_agent_client::qr;
pub mod uri;

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

pub use self::base32::{decode_base32, encode_base32};
use crate::secret::SecretBytes;

/// RFC 4226's minimum, 128 bits; AWS's seeds are 320. A shorter secret is weaker.
pub const MIN_SECRET_BYTES: usize = 16;
/// What is accepted nonetheless, with a note: 80-bit secrets (16 base32 characters) are
/// common on older sites, and Google Authenticator and ykman take them. Shorter ones are a
/// copy cut short, or nothing worth guarding with.
pub const MIN_ACCEPTED_SECRET_BYTES: usize = 10;

#[derive(Debug, Clone, Error, PartialEq, Eq)]
pub enum OtpError {
    #[error(
        "the secret is not valid base32: position {position} holds a character outside A-Z and 2-7 (0, 1 and 8 are often misread O, I and B); copy the secret again"
    )]
    InvalidBase32 { position: usize },
    #[error(
        "the secret's {characters} characters are not a whole base32 secret (its end does not line up with a whole byte); a character is likely missing or extra from the copy (AWS seeds have 64): copy the secret again"
    )]
    Base32Truncated { characters: usize },
    #[error("the secret is empty; paste the base32 secret or the otpauth:// URI")]
    EmptySecret,
    #[error(
        "the secret is only {bits} bits; TOTP needs at least 80 (AWS seeds are 320 bits, 64 characters): check that you copied all of it"
    )]
    SecretTooShort { bits: usize },
    #[error("{digits} digits is not supported; TOTP codes have 6, 7 or 8 digits")]
    InvalidDigits { digits: u8 },
    #[error("a period of {period} s is not supported; use 1 to 3600 seconds (almost always 30)")]
    InvalidPeriod { period: u64 },
    #[error("unknown algorithm {0:?}; use SHA1, SHA256 or SHA512")]
    UnknownAlgorithm(String),
}

/// The HMAC behind the codes. AWS virtual MFA devices use SHA1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Algorithm {
    #[default]
    Sha1,
    Sha256,
    Sha512,
}

impl fmt::Display for Algorithm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        })
    }
}

impl FromStr for Algorithm {
    type Err = OtpError;
    fn from_str(s: &str) -> Result<Self, OtpError> {
        match s.to_ascii_uppercase().replace('-', "").as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(OtpError::UnknownAlgorithm(s.to_owned())),
        }
    }
}

impl From<Algorithm> for totp_rs::Algorithm {
    fn from(a: Algorithm) -> Self {
        match a {
            Algorithm::Sha1 => Self::SHA1,
            Algorithm::Sha256 => Self::SHA256,
            Algorithm::Sha512 => Self::SHA512,
        }
    }
}

/// How codes are derived from a seed. The defaults are AWS's: SHA1, 6 digits, 30 s.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct OtpParams {
    pub algorithm: Algorithm,
    pub digits: u8,
    pub period: u64,
}

impl Default for OtpParams {
    fn default() -> Self {
        Self {
            algorithm: Algorithm::Sha1,
            digits: 6,
            period: 30,
        }
    }
}

impl OtpParams {
    pub fn validate(&self) -> Result<(), OtpError> {
        if !(6..=8).contains(&self.digits) {
            return Err(OtpError::InvalidDigits {
                digits: self.digits,
            });
        }
        if !(1..=3600).contains(&self.period) {
            return Err(OtpError::InvalidPeriod {
                period: self.period,
            });
        }
        Ok(())
    }

    /// The time step (RFC 6238's T) that `unix_time` falls in.
    #[must_use]
    pub fn step(&self, unix_time: u64) -> u64 {
        unix_time / self.period
    }
}

/// A seed as imported: its parameters, the labels that came with it, and the secret.
#[derive(Debug)]
pub struct Seed {
    pub params: OtpParams,
    pub issuer: Option<String>,
    pub account: Option<String>,
    pub secret: SecretBytes,
}

impl Seed {
    /// A seed with AWS's parameters and no labels, as from a bare base32 secret.
    pub fn from_secret(secret: SecretBytes) -> Result<Self, OtpError> {
        let seed = Self {
            params: OtpParams::default(),
            issuer: None,
            account: None,
            secret,
        };
        seed.validate()?;
        Ok(seed)
    }

    pub fn validate(&self) -> Result<(), OtpError> {
        self.params.validate()?;
        if self.secret.is_empty() {
            return Err(OtpError::EmptySecret);
        }
        if self.secret.len() < MIN_ACCEPTED_SECRET_BYTES {
            return Err(OtpError::SecretTooShort {
                bits: self.secret.len() * 8,
            });
        }
        Ok(())
    }
}

/// One code and the window of time in which it is valid.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Code {
    /// The digits, zero-padded to the seed's length.
    pub digits: String,
    /// The time step the code belongs to; the agent's replay guard remembers it.
    pub step: u64,
    /// Unix time the window opens.
    pub valid_from: u64,
    /// Unix time the window closes (exclusive).
    pub valid_until: u64,
}

/// Computes the code for `unix_time`.
pub fn code_at(params: &OtpParams, secret: &SecretBytes, unix_time: u64) -> Result<Code, OtpError> {
    params.validate()?;
    if secret.len() < MIN_ACCEPTED_SECRET_BYTES {
        return Err(OtpError::SecretTooShort {
            bits: secret.len() * 8,
        });
    }
    // The Totp copy of the secret is zeroed when it drops (totp-rs `zeroize` feature).
    let builder = totp_rs::Builder::new()
        .with_algorithm(params.algorithm.into())
        .with_digits(params.digits)
        .with_step_duration(params.period)
        .with_skew(0)
        .with_secret(secret.expose().to_vec());
    // totp-rs refuses secrets under 128 bits; the parameters were checked above, so an
    // accepted shorter one is built without that check.
    let totp = if secret.len() < MIN_SECRET_BYTES {
        builder.build_noncompliant()
    } else {
        builder.build().map_err(|_| OtpError::SecretTooShort {
            bits: secret.len() * 8,
        })?
    };
    let step = params.step(unix_time);
    let valid_from = step * params.period;
    Ok(Code {
        digits: totp.generate(unix_time).to_string(),
        step,
        valid_from,
        valid_until: valid_from + params.period,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(ascii: &str) -> SecretBytes {
        SecretBytes::new(ascii.as_bytes().to_vec())
    }

    /// RFC 6238 Appendix B: the reference seeds and the 8-digit codes for each algorithm.
    #[test]
    fn rfc6238_appendix_b_vectors() {
        let sha1 = secret("12345678901234567890");
        let sha256 = secret("12345678901234567890123456789012");
        let sha512 = secret("1234567890123456789012345678901234567890123456789012345678901234");
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1_111_111_109, "07081804", "68084774", "25091201"),
            (1_111_111_111, "14050471", "67062674", "99943326"),
            (1_234_567_890, "89005924", "91819424", "93441116"),
            (2_000_000_000, "69279037", "90698825", "38618901"),
            (20_000_000_000, "65353130", "77737706", "47863826"),
        ];
        for (time, c1, c256, c512) in vectors {
            for (algorithm, key, want) in [
                (Algorithm::Sha1, &sha1, c1),
                (Algorithm::Sha256, &sha256, c256),
                (Algorithm::Sha512, &sha512, c512),
            ] {
                let params = OtpParams {
                    algorithm,
                    digits: 8,
                    period: 30,
                };
                let code = code_at(&params, key, time).unwrap();
                assert_eq!(code.digits, want, "{algorithm} at {time}");
            }
        }
    }

    #[test]
    fn window_bounds_follow_the_period() {
        let params = OtpParams {
            period: 60,
            ..OtpParams::default()
        };
        let code = code_at(&params, &secret("12345678901234567890"), 1_000_000_019).unwrap();
        assert_eq!(code.valid_from, 999_999_960);
        assert_eq!(code.valid_until, 1_000_000_020);
        assert_eq!(code.step, 16_666_666);
        assert_eq!(code.digits.len(), 6);
    }

    #[test]
    fn rejects_bad_parameters_and_short_secrets() {
        let key = secret("12345678901234567890");
        let nine = OtpParams {
            digits: 9,
            ..OtpParams::default()
        };
        assert_eq!(
            code_at(&nine, &key, 0),
            Err(OtpError::InvalidDigits { digits: 9 })
        );
        let zero = OtpParams {
            period: 0,
            ..OtpParams::default()
        };
        assert_eq!(
            code_at(&zero, &key, 0),
            Err(OtpError::InvalidPeriod { period: 0 })
        );
        let short = secret("012345678");
        assert_eq!(
            code_at(&OtpParams::default(), &short, 0),
            Err(OtpError::SecretTooShort { bits: 72 })
        );
    }

    #[test]
    fn algorithm_names_parse_loosely() {
        assert_eq!("sha-256".parse::<Algorithm>().unwrap(), Algorithm::Sha256);
        assert!("md5".parse::<Algorithm>().is_err());
    }
}
