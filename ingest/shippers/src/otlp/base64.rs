//! Base64 for `bytesValue`: the JSON mapping sends bytes as base64 text
//! (standard or URL-safe alphabet, padded or not), and Helios events
//! carry them as standard padded base64 strings (RFC 4648 §4).

const STANDARD: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Appends the standard, padded base64 of `bytes` to `out`.
pub fn encode_into(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len().div_ceil(3) * 4);
    let mut chunks = bytes.chunks_exact(3);
    for chunk in &mut chunks {
        let n = u32::from(chunk[0]) << 16 | u32::from(chunk[1]) << 8 | u32::from(chunk[2]);
        out.extend_from_slice(&[
            STANDARD[(n >> 18) as usize & 63],
            STANDARD[(n >> 12) as usize & 63],
            STANDARD[(n >> 6) as usize & 63],
            STANDARD[n as usize & 63],
        ]);
    }
    match *chunks.remainder() {
        [a] => {
            let n = u32::from(a) << 16;
            out.extend_from_slice(&[
                STANDARD[(n >> 18) as usize & 63],
                STANDARD[(n >> 12) as usize & 63],
                b'=',
                b'=',
            ]);
        }
        [a, b] => {
            let n = u32::from(a) << 16 | u32::from(b) << 8;
            out.extend_from_slice(&[
                STANDARD[(n >> 18) as usize & 63],
                STANDARD[(n >> 12) as usize & 63],
                STANDARD[(n >> 6) as usize & 63],
                b'=',
            ]);
        }
        _ => {}
    }
}

/// The standard, padded base64 of `bytes`.
pub fn encode(bytes: &[u8]) -> String {
    let mut out = Vec::new();
    encode_into(&mut out, bytes);
    // The alphabet and `=` are ASCII.
    String::from_utf8(out).unwrap_or_default()
}

/// Decodes standard or URL-safe base64, padded or not; `None` for
/// anything else (a stray character, a length no encoder produces,
/// non-zero bits past the data).
pub fn decode(text: &str) -> Option<Vec<u8>> {
    fn sextet(b: u8) -> Option<u32> {
        Some(u32::from(match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'+' | b'-' => 62,
            b'/' | b'_' => 63,
            _ => return None,
        }))
    }
    let data = text.as_bytes();
    // Padding, when present, completes the last group of four.
    let data = match data {
        [rest @ .., b'=', b'='] if data.len() % 4 == 0 => rest,
        [rest @ .., b'='] if data.len() % 4 == 0 => rest,
        _ => data,
    };
    if data.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(data.len() / 4 * 3 + 2);
    let mut chunks = data.chunks_exact(4);
    for chunk in &mut chunks {
        let n = chunk
            .iter()
            .try_fold(0u32, |n, &b| Some(n << 6 | sextet(b)?))?;
        out.extend_from_slice(&[(n >> 16) as u8, (n >> 8) as u8, n as u8]);
    }
    match *chunks.remainder() {
        [a, b] => {
            let n = sextet(a)? << 6 | sextet(b)?;
            if n & 0xf != 0 {
                return None;
            }
            out.push((n >> 4) as u8);
        }
        [a, b, c] => {
            let n = sextet(a)? << 12 | sextet(b)? << 6 | sextet(c)?;
            if n & 0x3 != 0 {
                return None;
            }
            out.extend_from_slice(&[(n >> 10) as u8, (n >> 2) as u8]);
        }
        _ => {}
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_rfc_4648_test_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ];
        for (plain, coded) in vectors {
            assert_eq!(encode(plain.as_bytes()), coded);
            assert_eq!(decode(coded).unwrap(), plain.as_bytes());
        }
    }

    #[test]
    fn decodes_url_safe_and_unpadded_text() {
        assert_eq!(decode("-_8").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode("+/8=").unwrap(), [0xfb, 0xff]);
        assert_eq!(decode("Zm9vYg").unwrap(), b"foob");
    }

    #[test]
    fn refuses_what_no_encoder_writes() {
        for bad in ["Z", "Zm9vY", "Zm9v!", "Zh==", "Zm9=v", "===="] {
            assert_eq!(decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn round_trips_every_byte_value() {
        let bytes: Vec<u8> = (0..=255).collect();
        for len in 0..bytes.len() {
            assert_eq!(decode(&encode(&bytes[..len])).unwrap(), &bytes[..len]);
        }
    }
}
