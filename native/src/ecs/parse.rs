//! A document's JSON read back into the document model ([`Value`]), for the rare documents that are
//! rewritten after they were written (cut to `[limits]`: `limits::cut_document`). Objects keep their
//! key order; floats keep their exact text (`Value::Raw`), so writing the value again gives the same
//! bytes.

use std::borrow::Cow;

use super::value::{Obj, Value};

/// The value of a JSON text, or None if it is not one (never the case for what `JsonWriter` writes).
pub fn parse(json: &[u8]) -> Option<Value> {
    let mut p = Parser { json, at: 0 };
    let v = p.value()?;
    p.skip_space();
    (p.at == json.len()).then_some(v)
}

struct Parser<'j> {
    json: &'j [u8],
    at: usize,
}

impl Parser<'_> {
    fn peek(&self) -> Option<u8> {
        self.json.get(self.at).copied()
    }

    fn skip_space(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.at += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Option<()> {
        self.skip_space();
        (self.peek()? == c).then(|| self.at += 1)
    }

    fn value(&mut self) -> Option<Value> {
        self.skip_space();
        match self.peek()? {
            b'{' => self.object(),
            b'[' => self.list(),
            b'"' => Some(Value::Str(Cow::Owned(self.string()?))),
            b't' => self.word(b"true", Value::Bool(true)),
            b'f' => self.word(b"false", Value::Bool(false)),
            b'n' => self.word(b"null", Value::Null),
            _ => self.number(),
        }
    }

    fn word(&mut self, word: &[u8], v: Value) -> Option<Value> {
        let end = self.at + word.len();
        (self.json.get(self.at..end)? == word).then(|| {
            self.at = end;
            v
        })
    }

    fn number(&mut self) -> Option<Value> {
        let start = self.at;
        while matches!(self.peek(), Some(b'-' | b'+' | b'.' | b'e' | b'E' | b'0'..=b'9')) {
            self.at += 1;
        }
        let text = std::str::from_utf8(&self.json[start..self.at]).ok()?;
        if text.is_empty() {
            return None;
        }
        if let Ok(v) = text.parse::<u64>() {
            return Some(Value::UInt(v));
        }
        if let Ok(v) = text.parse::<i64>() {
            return Some(Value::Int(v));
        }
        // beyond 64 bits (written exactly where a field is not indexed as a number): kept as its text
        text.parse::<f64>().ok()?;
        Some(Value::Raw(text.as_bytes().to_vec()))
    }

    fn object(&mut self) -> Option<Value> {
        self.at += 1;
        let mut obj = Obj::new();
        self.skip_space();
        if self.peek()? == b'}' {
            self.at += 1;
            return Some(Value::Obj(obj));
        }
        loop {
            self.skip_space();
            if self.peek()? != b'"' {
                return None;
            }
            let key = self.string()?;
            self.eat(b':')?;
            let v = self.value()?;
            obj.entries.push((Cow::Owned(key), v));
            self.skip_space();
            match self.peek()? {
                b',' => self.at += 1,
                b'}' => {
                    self.at += 1;
                    return Some(Value::Obj(obj));
                }
                _ => return None,
            }
        }
    }

    fn list(&mut self) -> Option<Value> {
        self.at += 1;
        let mut items = Vec::new();
        self.skip_space();
        if self.peek()? == b']' {
            self.at += 1;
            return Some(Value::List(items));
        }
        loop {
            items.push(self.value()?);
            self.skip_space();
            match self.peek()? {
                b',' => self.at += 1,
                b']' => {
                    self.at += 1;
                    return Some(Value::List(items));
                }
                _ => return None,
            }
        }
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = std::str::from_utf8(self.json.get(self.at..self.at + 4)?).ok()?;
        self.at += 4;
        u32::from_str_radix(digits, 16).ok()
    }

    /// The string at `at` (its opening quote), unescaped.
    fn string(&mut self) -> Option<String> {
        self.at += 1;
        let mut out: Vec<u8> = Vec::new();
        loop {
            let run = self.json[self.at..].iter().position(|&c| c == b'"' || c == b'\\')?;
            out.extend_from_slice(&self.json[self.at..self.at + run]);
            self.at += run;
            if self.json[self.at] == b'"' {
                self.at += 1;
                return String::from_utf8(out).ok();
            }
            let escape = *self.json.get(self.at + 1)?;
            self.at += 2;
            let c = match escape {
                b'"' => '"',
                b'\\' => '\\',
                b'/' => '/',
                b'n' => '\n',
                b'r' => '\r',
                b't' => '\t',
                b'b' => '\u{8}',
                b'f' => '\u{c}',
                b'u' => {
                    let hi = self.hex4()?;
                    if (0xD800..0xDC00).contains(&hi) && self.json.get(self.at..self.at + 2) == Some(b"\\u") {
                        self.at += 2;
                        let lo = self.hex4()?;
                        char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo.checked_sub(0xDC00)?))?
                    } else {
                        char::from_u32(hi)?
                    }
                }
                _ => return None,
            };
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_again_it_is_the_same_bytes() {
        let json =
            r#"{"a":{"b":[1,-2,3.5e-7,true,false,null],"c":"\"\\\n\u0001é😀"},"k\"":18446744073709551615,"z":[]}"#;
        let v = parse(json.as_bytes()).unwrap();
        let Value::Obj(o) = &v else { panic!("not an object") };
        assert_eq!(o.to_json().unwrap(), json.as_bytes());
        assert_eq!(o.get_path("a.c").and_then(Value::as_str), Some("\"\\\n\u{1}é😀"));
        assert_eq!(parse(br#"{"a":"\ud83d\ude00"}"#).unwrap().as_obj().unwrap().get("a").unwrap().as_str(), Some("😀"));
        assert_eq!(parse(b"{\"a\":1"), None);
        assert_eq!(parse(b"[1,]"), None);
    }
}
