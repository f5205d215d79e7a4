//! Base32 (RFC 4648) for seeds as people paste them: any case, spaces, dashes, `=` padding.

use zeroize::Zeroize;

use super::OtpError;
use crate::secret::{SecretBytes, SecretString};

const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// Decodes a base32 seed after normalising it: letters are upper-cased; spaces, dashes and
/// `=` padding are dropped. Invalid input names the position of the first bad character
/// (counted in the normalised text) but never echoes the secret. Only canonical base32 is
/// accepted: a length that no byte count encodes (1, 3 or 6 characters past a multiple of 8)
/// or bits left over after the last byte that are not zero mean a character was lost or
/// added in the copy (a 63-character paste of a 64-character seed), which would otherwise
/// decode to a shorter seed and wrong codes.
pub fn decode_base32(input: &str) -> Result<SecretBytes, OtpError> {
    let mut out = Vec::with_capacity(input.len() * 5 / 8 + 1);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    let mut position = 0usize;
    for c in input.bytes() {
        if c.is_ascii_whitespace() || c == b'-' || c == b'=' {
            continue;
        }
        position += 1;
        let upper = c.to_ascii_uppercase();
        let Some(value) = ALPHABET.iter().position(|&a| a == upper) else {
            out.zeroize();
            buffer.zeroize();
            return Err(OtpError::InvalidBase32 { position });
        };
        buffer = (buffer << 5) | value as u64;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    let leftover = buffer & ((1 << bits) - 1);
    buffer.zeroize();
    if out.is_empty() && position == 0 {
        return Err(OtpError::EmptySecret);
    }
    if matches!(position % 8, 1 | 3 | 6) || leftover != 0 {
        out.zeroize();
        return Err(OtpError::Base32Truncated {
            characters: position,
        });
    }
    Ok(SecretBytes::new(out))
}

/// Encodes a seed as unpadded upper-case base32, the form authenticator apps expect.
#[must_use]
pub fn encode_base32(secret: &SecretBytes) -> SecretString {
    let bytes = secret.expose();
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for &b in bytes {
        buffer = (buffer << 8) | u64::from(b);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            out.push(ALPHABET[((buffer >> bits) & 31) as usize] as char);
        }
    }
    if bits > 0 {
        out.push(ALPHABET[((buffer << (5 - bits)) & 31) as usize] as char);
    }
    buffer.zeroize();
    SecretString::new(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc4648_vectors_round_trip() {
        for (plain, encoded) in [
            ("f", "MY"),
            ("fo", "MZXQ"),
            ("foo", "MZXW6"),
            ("foob", "MZXW6YQ"),
            ("fooba", "MZXW6YTB"),
            ("foobar", "MZXW6YTBOI"),
        ] {
            let bytes = SecretBytes::new(plain.as_bytes().to_vec());
            assert_eq!(encode_base32(&bytes).expose(), encoded);
            assert_eq!(decode_base32(encoded).unwrap().expose(), plain.as_bytes());
        }
    }

    #[test]
    fn pasted_forms_normalise() {
        let want = decode_base32("JBSWY3DPEHPK3PXP").unwrap();
        for pasted in [
            "jbsw y3dp ehpk 3pxp",
            "JBSW-Y3DP-EHPK-3PXP",
            "JBSWY3DPEHPK3PXP====\n",
        ] {
            assert_eq!(
                decode_base32(pasted).unwrap().expose(),
                want.expose(),
                "{pasted}"
            );
        }
    }

    #[test]
    fn a_seed_short_or_long_by_a_character_is_refused() {
        // A 64-character (40-byte) AWS seed, as AWS shows it.
        let bytes = (0..40u8).map(|i| i.wrapping_mul(37)).collect();
        let seed = encode_base32(&SecretBytes::new(bytes)).expose().to_owned();
        assert_eq!(seed.len(), 64);
        assert_eq!(decode_base32(&seed).unwrap().expose().len(), 40);
        for (pasted, characters) in [
            (&seed[..63], 63),
            (&seed[1..], 63),
            (&seed[..62], 62),
            (&format!("{seed}A"), 65),
        ] {
            // 62 and 65 characters line up with no byte count; 63 do (39 bytes), but leave
            // bits over that are set for this seed (as for 7 seeds in 8).
            let err = decode_base32(pasted).unwrap_err();
            assert_eq!(err, OtpError::Base32Truncated { characters }, "{pasted}");
            assert!(err.to_string().contains("missing or extra"));
        }
        // Bits left over that are set: "MZ" is not "f" ("MY" is).
        assert_eq!(
            decode_base32("MZ").unwrap_err(),
            OtpError::Base32Truncated { characters: 2 }
        );
    }

    #[test]
    fn bad_characters_are_located_not_echoed() {
        let err = decode_base32("JBSW Y3D1").unwrap_err();
        assert_eq!(err, OtpError::InvalidBase32 { position: 8 });
        assert!(!err.to_string().contains("JBSW"));
        assert_eq!(decode_base32("  ==").unwrap_err(), OtpError::EmptySecret);
    }
}
