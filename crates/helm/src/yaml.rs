//! Writing `index.yaml` so that Helm reads back exactly what was meant.
//!
//! Helm parses with a YAML 1.1 parser, where plain `on`, `no`, `y` are
//! booleans and `1.10` is a number; YAML 1.2 emitters (like every maintained
//! Rust one) leave those unquoted. So this small emitter writes a string
//! plain only when it cannot be read as anything but a string (it starts
//! with a letter, holds only `[A-Za-z0-9._/+-]`, and is no YAML 1.1 boolean
//! or null); everything else is double-quoted, with every control or line
//! separator character escaped. Block style, keys in the order given
//! (sorted, as Helm writes them), sequences at their key's indentation.

use serde_json::{Map, Value};

/// `items` as a block sequence whose `- ` starts at column `indent`.
pub fn sequence(out: &mut String, items: &[Value], indent: usize) {
    for item in items {
        match item {
            Value::Object(m) if !m.is_empty() => {
                pad(out, indent);
                out.push_str("- ");
                mapping(out, m, indent + 2, Some(""));
            }
            Value::Array(a) if !a.is_empty() => {
                pad(out, indent);
                out.push_str("-\n");
                sequence(out, a, indent + 2);
            }
            other => {
                pad(out, indent);
                out.push_str("- ");
                push_inline(out, other);
                out.push('\n');
            }
        }
    }
}

/// `map` as a block mapping at column `indent`; the first line starts with
/// `first` instead of the indentation (after the `- ` of a sequence item).
pub fn mapping(out: &mut String, map: &Map<String, Value>, indent: usize, first: Option<&str>) {
    for (i, (key, value)) in map.iter().enumerate() {
        match (i, first) {
            (0, Some(prefix)) => out.push_str(prefix),
            _ => pad(out, indent),
        }
        push_scalar(out, key);
        out.push(':');
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                mapping(out, m, indent + 2, None);
            }
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, a, indent);
            }
            other => {
                out.push(' ');
                push_inline(out, other);
                out.push('\n');
            }
        }
    }
}

/// A string as a YAML scalar that every YAML 1.1 or 1.2 parser reads as
/// that same string.
pub fn scalar(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_scalar(&mut out, s);
    out
}

/// Appends [`scalar`]`(s)` to `out`.
fn push_scalar(out: &mut String, s: &str) {
    let plain = s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._/+-".contains(&b))
        && !["y", "yes", "n", "no", "true", "false", "on", "off", "null"]
            .iter()
            .any(|word| s.eq_ignore_ascii_case(word));
    if plain {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}') => {
                out.push_str(&format!("\\u{:04x}", u32::from(c)));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends a value written on its key's line.
fn push_inline(out: &mut String, value: &Value) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => push_scalar(out, s),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn pad(out: &mut String, indent: usize) {
    out.extend(std::iter::repeat_n(' ', indent));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_whatever_yaml_1_1_would_read_otherwise() {
        for plain in ["web", "v2", "application", "a.b/c-d_e+f", "e10"] {
            assert_eq!(scalar(plain), plain);
        }
        let cases = [
            ("on", "\"on\""),
            ("No", "\"No\""),
            ("y", "\"y\""),
            ("null", "\"null\""),
            ("1.10", "\"1.10\""),
            ("0755", "\"0755\""),
            ("", "\"\""),
            ("a: b # c", "\"a: b # c\""),
            ("two\nlines\t\"q\"\\", "\"two\\nlines\\t\\\"q\\\"\\\\\""),
            ("\u{7f}\u{85}\u{2028}é", "\"\\u007f\\u0085\\u2028é\""),
        ];
        for (s, quoted) in cases {
            assert_eq!(scalar(s), quoted, "{s:?}");
        }
    }

    #[test]
    fn writes_block_yaml_that_reads_back_the_same() {
        let value = serde_json::json!({
            "annotations": {"artifacthub.io/changes": "- fixed\n- added", "x": "on"},
            "dependencies": [{"import-values": ["a", {"child": "c", "parent": "p"}], "name": "db", "repository": ""}],
            "empty": [], "keywords": ["on", "1.10"], "n": 1, "t": true,
        });
        let mut out = String::new();
        sequence(&mut out, std::slice::from_ref(&value), 2);
        assert!(
            out.starts_with(
                "  - annotations:\n      artifacthub.io/changes: \"- fixed\\n- added\"\n"
            ),
            "{out}"
        );
        assert!(
            out.contains("    keywords:\n    - \"on\"\n    - \"1.10\"\n"),
            "{out}"
        );
        let back: Vec<Value> = yaml_serde::from_str(&out).unwrap();
        assert_eq!(back, [value]);
    }
}
