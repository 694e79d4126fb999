//! A fast path for decoding the plain JSON lines hub's own tools write, for readers whose
//! input is a million of them (`hub-report`): serde_json spends most of its time being general.
//!
//! A [`Scan`] reads one line, member by member, and gives up (`None`) on anything it is not
//! sure about: an escape in a string, a float where it must read an integer, a nesting deeper
//! than a few levels, anything malformed. The caller then decodes the line with serde
//! ([`crate::jsonl::decode`]), which decides, so what a reader accepts and every message it
//! reports stay serde's. A scan must therefore only ever succeed where serde would, with the
//! same values; what it declines merely costs the slow path.

use serde::Deserialize;
use serde::de::value::BorrowedStrDeserializer;

/// Nesting a skipped value may have before the scan gives up (serde_json allows 128).
const MAX_DEPTH: u32 = 32;

/// A cursor over one line of JSON text.
#[derive(Debug, Clone)]
pub struct Scan<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Scan<'a> {
    /// A scan at the start of `text`.
    pub fn new(text: &'a str) -> Self {
        Scan { text, pos: 0 }
    }

    fn bytes(&self) -> &'a [u8] {
        self.text.as_bytes()
    }

    /// The next byte that is not JSON whitespace, without consuming it.
    // Inlined, with `expect` and `str_rest`, into the loops over members: a line is a few dozen
    // tokens, and a call per token showed in the profile.
    #[inline]
    fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes().get(self.pos) {
            if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
                return Some(b);
            }
            self.pos += 1;
        }
        None
    }

    /// Consume `byte` (after whitespace), or give up.
    #[inline]
    fn expect(&mut self, byte: u8) -> Option<()> {
        (self.peek()? == byte).then(|| self.pos += 1)
    }

    /// Consume `word` (`null`, `true`, `false`) if it comes next.
    fn word(&mut self, word: &str) -> bool {
        let found = self.peek().is_some()
            && self
                .bytes()
                .get(self.pos..)
                .is_some_and(|rest| rest.starts_with(word.as_bytes()));
        if found {
            self.pos += word.len();
        }
        found
    }

    /// Read a whole object, calling `member` with each key; `member` must consume the value
    /// (with [`Scan::skip`] if it has no use for it). Only whitespace may follow the object.
    pub fn object(
        &mut self,
        mut member: impl FnMut(&'a str, &mut Self) -> Option<()>,
    ) -> Option<()> {
        self.expect(b'{')?;
        if self.peek()? == b'}' {
            self.pos += 1;
        } else {
            loop {
                self.expect(b'"')?;
                let key = self.str_rest()?;
                self.expect(b':')?;
                member(key, self)?;
                match self.peek()? {
                    b',' => self.pos += 1,
                    b'}' => {
                        self.pos += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        (self.peek().is_none()).then_some(())
    }

    /// A string with no escapes and no control characters (serde refuses those), borrowed.
    pub fn str(&mut self) -> Option<&'a str> {
        self.expect(b'"')?;
        self.str_rest()
    }

    /// The rest of a string whose opening quote has been consumed.
    #[inline]
    fn str_rest(&mut self) -> Option<&'a str> {
        let start = self.pos;
        let bytes = self.bytes();
        // Stops at the closing quote, and at anything the fast path leaves to serde.
        let len = find(
            bytes.get(start..)?,
            |word| {
                zero_bytes(word ^ splat(b'"')) | zero_bytes(word ^ splat(b'\\')) | below(word, 0x20)
            },
            |b| b == b'"' || b == b'\\' || b < 0x20,
        )?;
        let end = start + len;
        if bytes.get(end) != Some(&b'"') {
            return None;
        }
        self.pos = end + 1;
        // Both ends sit next to an ASCII quote, so they are character boundaries.
        self.text.get(start..end)
    }

    /// `null` as `None`, else what `read` reads.
    pub fn nullable<T>(&mut self, read: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        // Only `null` starts with `n`: most values are not, and are told so by one byte.
        if self.peek()? == b'n' {
            self.word("null").then_some(None)
        } else {
            read(self).map(Some)
        }
    }

    /// `true` or `false`.
    pub fn bool(&mut self) -> Option<bool> {
        if self.word("true") {
            Some(true)
        } else if self.word("false") {
            Some(false)
        } else {
            None
        }
    }

    /// Digits right here (no whitespace first) with no fraction or exponent (serde reads those
    /// as floats).
    fn digits(&mut self) -> Option<u64> {
        let bytes = self.bytes();
        let start = self.pos;
        let mut value: u64 = 0;
        while let Some(&b) = bytes.get(self.pos).filter(|b| b.is_ascii_digit()) {
            value = value.checked_mul(10)?.checked_add(u64::from(b - b'0'))?;
            self.pos += 1;
        }
        let len = self.pos - start;
        // At least one digit, and no leading zero (which serde calls an invalid number).
        let valid = len > 0 && (len == 1 || bytes.get(start) != Some(&b'0'));
        // A `.`, `e` or `E` right after makes it a float; the caller's next `expect` would give
        // up on those anyway, but saying so here keeps this function honest on its own.
        let plain = !matches!(bytes.get(self.pos), Some(b'.' | b'e' | b'E'));
        (valid && plain).then_some(value)
    }

    /// A non-negative integer.
    pub fn u64(&mut self) -> Option<u64> {
        self.peek()?;
        self.digits()
    }

    /// A non-negative integer that fits in a `u32`.
    pub fn u32(&mut self) -> Option<u32> {
        self.u64().and_then(|value| u32::try_from(value).ok())
    }

    /// An integer that fits in an `i64`. `-0` is declined: serde reads it as a float.
    pub fn i64(&mut self) -> Option<i64> {
        if self.peek()? == b'-' {
            self.pos += 1;
            let magnitude = self.digits().filter(|&m| m > 0)?;
            0i64.checked_sub_unsigned(magnitude)
        } else {
            self.digits().and_then(|value| i64::try_from(value).ok())
        }
    }

    /// A string (as [`Scan::str`] reads it) that serde turns into a `T`: an enum of unit
    /// variants, say, so that which names it takes stays the type's own business.
    pub fn str_as<T: Deserialize<'a>>(&mut self) -> Option<T> {
        let text: BorrowedStrDeserializer<'a, serde::de::value::Error> =
            BorrowedStrDeserializer::new(self.str()?);
        T::deserialize(text).ok()
    }

    /// A number in any form JSON allows (sign, fraction, exponent): only its grammar is checked,
    /// as serde checks a number it skips.
    fn skip_number(&mut self) -> Option<()> {
        let bytes = self.bytes();
        if bytes.get(self.pos) == Some(&b'-') {
            self.pos += 1;
        }
        let start = self.pos;
        let int = self.skip_digits();
        // At least one digit, and no leading zero.
        if int == 0 || (int > 1 && bytes.get(start) == Some(&b'0')) {
            return None;
        }
        if bytes.get(self.pos) == Some(&b'.') {
            self.pos += 1;
            if self.skip_digits() == 0 {
                return None;
            }
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if self.skip_digits() == 0 {
                return None;
            }
        }
        Some(())
    }

    /// Step over digits; how many there were.
    fn skip_digits(&mut self) -> usize {
        let start = self.pos;
        while self.bytes().get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
        self.pos - start
    }

    /// An array of strings (each as [`Scan::str`] reads it), each made a `T` (`&str`,
    /// `Cow<str>`).
    pub fn str_array<T: From<&'a str>>(&mut self) -> Option<Vec<T>> {
        self.expect(b'[')?;
        let mut items = Vec::new();
        if self.peek()? == b']' {
            self.pos += 1;
            return Some(items);
        }
        loop {
            items.push(T::from(self.str()?));
            match self.peek()? {
                b',' => self.pos += 1,
                b']' => {
                    self.pos += 1;
                    return Some(items);
                }
                _ => return None,
            }
        }
    }

    /// Step over any value the fast path can read (strings as [`Scan::str`], integers, `true`,
    /// `false`, `null`, and arrays and objects of those, a few levels deep).
    pub fn skip(&mut self) -> Option<()> {
        self.skip_nested(0)
    }

    fn skip_nested(&mut self, depth: u32) -> Option<()> {
        match self.peek()? {
            b'"' => {
                self.pos += 1;
                self.str_rest().map(drop)
            }
            b'-' | b'0'..=b'9' => self.skip_number(),
            b't' | b'f' => self.bool().map(drop),
            b'n' => self.word("null").then_some(()),
            open @ (b'[' | b'{') if depth < MAX_DEPTH => {
                self.pos += 1;
                let close = if open == b'[' { b']' } else { b'}' };
                if self.peek()? == close {
                    self.pos += 1;
                    return Some(());
                }
                loop {
                    if open == b'{' {
                        self.str()?;
                        self.expect(b':')?;
                    }
                    self.skip_nested(depth + 1)?;
                    match self.peek()? {
                        b',' => self.pos += 1,
                        b if b == close => {
                            self.pos += 1;
                            return Some(());
                        }
                        _ => return None,
                    }
                }
            }
            _ => None,
        }
    }
}

/// The first byte that `matches`, looked for eight at a time: `flags` sets the high bit of each
/// byte of a little-endian word that matches, and of none below the first match (the classic
/// bit tricks below may flag bytes above it). Lines are a few hundred bytes and a report reads
/// a million, so a byte-at-a-time search shows in the profile.
pub(crate) fn find(
    bytes: &[u8],
    flags: impl Fn(u64) -> u64,
    matches: impl Fn(u8) -> bool,
) -> Option<usize> {
    let (words, rest) = bytes.as_chunks::<8>();
    for (i, word) in words.iter().enumerate() {
        let found = flags(u64::from_le_bytes(*word));
        if found != 0 {
            return Some(i * 8 + (found.trailing_zeros() / 8) as usize);
        }
    }
    let at = rest.iter().position(|&b| matches(b))?;
    Some(words.len() * 8 + at)
}

const ONES: u64 = u64::from_le_bytes([0x01; 8]);
const HIGHS: u64 = u64::from_le_bytes([0x80; 8]);

/// `byte` in every byte of a word.
pub(crate) const fn splat(byte: u8) -> u64 {
    u64::from_le_bytes([byte; 8])
}

/// Flags the zero bytes of `word` (see [`find`]).
pub(crate) const fn zero_bytes(word: u64) -> u64 {
    word.wrapping_sub(ONES) & !word & HIGHS
}

/// Flags the bytes of `word` below `n`, for `n` up to 128 (see [`find`]).
const fn below(word: u64, n: u8) -> u64 {
    word.wrapping_sub(splat(n)) & !word & HIGHS
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    /// Every member of a line's object, each value skipped: Some exactly when the scan reads it.
    fn keys(line: &str) -> Option<Vec<&str>> {
        let mut keys = Vec::new();
        Scan::new(line).object(|key, scan| {
            keys.push(key);
            scan.skip()
        })?;
        Some(keys)
    }

    #[test]
    fn reads_a_record_member_by_member() {
        let line =
            r#" {"type":"plan", "ts":17, "deps":["a","b"], "ok":true, "x":{"y":[1,-2,null,{}]}} "#;
        let mut seen = Vec::new();
        let read = Scan::new(line).object(|key, scan| {
            match key {
                "type" => seen.push(scan.str()?.to_owned()),
                "ts" => seen.push(scan.u64()?.to_string()),
                "deps" => seen.push(scan.str_array::<&str>()?.join("+")),
                "ok" => seen.push(scan.bool()?.to_string()),
                _ => scan.skip()?,
            }
            Some(())
        });
        assert_eq!(read, Some(()));
        assert_eq!(seen, ["plan", "17", "a+b", "true"]);
    }

    #[test]
    fn a_string_ends_at_its_quote_or_where_serde_must_take_over() {
        for stop in ["\"", "\\", "\u{1f}", "\n"] {
            for len in 0..20 {
                let plain = "aé✓".repeat(len);
                let line = format!("\"{plain}{stop}\"");
                let read = Scan::new(&line).str();
                if stop == "\"" {
                    assert_eq!(read, Some(plain.as_str()));
                } else {
                    assert_eq!(read, None, "{line:?}");
                }
            }
        }
    }

    #[test]
    fn numbers_serde_would_read_otherwise_are_declined() {
        let read = |text: &str| Scan::new(text).i64();
        assert_eq!(read("42"), Some(42));
        assert_eq!(read("-42"), Some(-42));
        assert_eq!(read("-9223372036854775808"), Some(i64::MIN));
        for declined in [
            "-0",
            "- 1",
            "01",
            "1.5",
            "1e3",
            "-",
            "9223372036854775808",
            "x",
        ] {
            assert_eq!(read(declined), None, "{declined}");
        }
        assert_eq!(Scan::new("18446744073709551615").u64(), Some(u64::MAX));
        assert_eq!(Scan::new("18446744073709551616").u64(), None);
        assert_eq!(Scan::new("4294967296").u32(), None);
    }

    #[test]
    fn what_the_scan_reads_serde_reads_alike() {
        let lines = [
            r#"{}"#,
            r#"{"a":"é ✓","b":[],"c":{},"d":[[[]]],"e":-1,"f":0,"g":false,"h":[-0.5e+3,1E9,0.0]}"#,
            "{\"a\"\t:\r\n1 }",
            r#"{"a":"x\"y"}"#,
            r#"{"a":"x"}{"#,
            r#"{"a":1,}"#,
            r#"{"a" 1}"#,
            r#"{"a":nul}"#,
            r#"{"a":[1 2]}"#,
            r#"{"a":1.}"#,
            r#"{"a":01}"#,
            r#"{"a":1e}"#,
            r#"{"a":-}"#,
            r#"[1]"#,
            "{\"a\":\"\u{1}\"}",
            &format!("{{\"a\":{}{}}}", "[".repeat(40), "]".repeat(40)),
        ];
        for line in lines {
            if let Some(keys) = keys(line) {
                let value: Value = serde_json::from_str(line).unwrap();
                let object = value.as_object().unwrap();
                assert_eq!(keys.len(), object.len(), "{line}");
            }
        }
        assert!(keys(lines[1]).is_some());
        assert!(keys(lines[2]).is_some());
        assert!(lines[3..].iter().all(|line| keys(line).is_none()));
    }
}
