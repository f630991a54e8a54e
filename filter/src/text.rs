//! How messages show a value someone else wrote (a configuration value, a
//! header, a redirect target): quoted, with everything that could disguise
//! a log line escaped.

/// `s` in double quotes, with quotes, backslashes, control characters and
/// every non-ASCII character escaped (`"a\tb"`, `"caf\u{e9}"`,
/// `"\u{202e}"`), so a hostile value cannot break a log line, fake one, or
/// reorder its text. The same as `{:?}` for printable ASCII, without the
/// Unicode tables `{:?}` brings into the module.
pub fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\0' => out.push_str("\\0"),
            ' '..='~' => out.push(c),
            c => {
                out.push_str("\\u{");
                let n = u32::from(c);
                let digits = (32 - n.leading_zeros()).div_ceil(4).max(1);
                for shift in (0..digits).rev() {
                    let d = (n >> (shift * 4)) & 0xf;
                    out.push(char::from_digit(d, 16).unwrap_or('?'));
                }
                out.push('}');
            }
        }
    }
    out.push('"');
    out
}

/// A list of values as `["a", "b"]`, each [`quoted`].
pub fn quoted_list<S: AsRef<str>>(items: &[S]) -> String {
    let all: Vec<String> = items.iter().map(|s| quoted(s.as_ref())).collect();
    format!("[{}]", all.join(", "))
}

#[cfg(test)]
mod tests {
    use super::{quoted, quoted_list};

    #[test]
    fn quoted_matches_debug_for_ascii_and_escapes_the_rest() {
        for s in [
            "",
            "app.example.com",
            "a\tb\r\n",
            "q\"uote\\",
            "\u{1}\u{7f}\0",
        ] {
            assert_eq!(quoted(s), format!("{s:?}"), "{s}");
        }
        assert_eq!(quoted("__Host-é"), r#""__Host-\u{e9}""#);
        assert_eq!(quoted("a\u{202e}b"), r#""a\u{202e}b""#);
        assert_eq!(quoted("\u{1f600}"), r#""\u{1f600}""#);
        let list = ["https://a.example/cb", "x\ty"];
        assert_eq!(quoted_list(&list), format!("{list:?}"));
    }
}
