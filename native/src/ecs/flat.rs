//! Flattened token lists: the length cap of their strings and the stored uncut copy (docs/schema.md,
//! "flattened"), done on the list's JSON text, which the mapper writes straight from the decoded tokens.

/// `FLAT_VALUE_LIMIT`: characters; 4 UTF-8 bytes each stays under Lucene's 32766-byte term limit.
pub const FLAT_VALUE_LIMIT: usize = 8191;

/// Walks the strings of a JSON text written by [`crate::json::JsonWriter`]: calls `on_string(start,
/// end)` for the bytes between the quotes of every string (keys included).
fn strings(json: &[u8], mut on_string: impl FnMut(usize, usize) -> bool) {
    let mut i = 0;
    while i < json.len() {
        if json[i] == b'"' {
            let start = i + 1;
            let mut j = start;
            while json[j] != b'"' {
                j += if json[j] == b'\\' { 2 } else { 1 };
            }
            if !on_string(start, j) {
                return;
            }
            i = j + 1;
        } else {
            i += 1;
        }
    }
}

/// Characters (code points) of a JSON string body: an escape is one, a UTF-8 sequence is one.
fn char_ends(body: &[u8]) -> impl Iterator<Item = usize> + '_ {
    let mut i = 0;
    std::iter::from_fn(move || {
        if i >= body.len() {
            return None;
        }
        i += match body[i] {
            b'\\' if body.get(i + 1) == Some(&b'u') => 6,
            b'\\' => 2,
            c if c < 0x80 => 1,
            c if c >= 0xF0 => 4,
            c if c >= 0xE0 => 3,
            _ => 2,
        };
        Some(i)
    })
}

/// `has_long_strings`: whether any string is longer than `limit` characters.
pub fn has_long_strings(json: &[u8], limit: usize) -> bool {
    if json.len() <= limit {
        return false; // a string of n characters takes at least n bytes of JSON
    }
    let mut found = false;
    strings(json, |start, end| {
        if end - start > limit && char_ends(&json[start..end]).nth(limit).is_some() {
            found = true;
        }
        !found
    });
    found
}

/// `cap_strings(...)[0]`: the same JSON with every string cut to its first `limit` characters.
pub fn cap_strings(json: &[u8], limit: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(json.len());
    let mut copied = 0;
    strings(json, |start, end| {
        if end - start > limit {
            if let Some(cut) = char_ends(&json[start..end]).nth(limit - 1) {
                out.extend_from_slice(&json[copied..start + cut]);
                copied = end;
            }
        }
        true
    });
    out.extend_from_slice(&json[copied..]);
    out
}

/// `json.dumps(value, ensure_ascii=False)` of a value whose orjson text is `json`: the same escapes,
/// with Python's default separators `", "` and `": "`.
pub fn python_dumps(json: &[u8]) -> String {
    let mut out = Vec::with_capacity(json.len() + json.len() / 8);
    let mut i = 0;
    while i < json.len() {
        let c = json[i];
        out.push(c);
        match c {
            b'"' => {
                let mut j = i + 1;
                while json[j] != b'"' {
                    j += if json[j] == b'\\' { 2 } else { 1 };
                }
                out.extend_from_slice(&json[i + 1..=j]);
                i = j;
            }
            b',' | b':' => out.push(b' '),
            _ => {}
        }
        i += 1;
    }
    String::from_utf8(out).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_strings_counted_in_characters() {
        let json = r#"[{"a":"ééééé","b":"\n\nxx"}]"#.as_bytes();
        assert!(!has_long_strings(json, 100));
        assert!(has_long_strings(json, 3));
        assert!(!has_long_strings(json, 5));
        assert_eq!(String::from_utf8(cap_strings(json, 3)).unwrap(), r#"[{"a":"ééé","b":"\n\nx"}]"#);
        assert_eq!(cap_strings(json, 5), json);
    }

    #[test]
    fn python_separators() {
        assert_eq!(python_dumps(br#"[{"a":1,"b":"x, y: \"z\""}]"#), r#"[{"a": 1, "b": "x, y: \"z\""}]"#);
    }
}
