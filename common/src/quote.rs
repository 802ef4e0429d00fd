//! Text another party wrote (a host, a node, a dApp), made safe to show inside quotes: the
//! one rule the CLI and the alloy client both apply to it.

/// `t` as it is shown between double quotes: `"` and `\` escaped, every character outside
/// printable ASCII written as `\u{…}` — no quotation mark of any script, control character,
/// combining mark or invisible character can close the quotes, move the cursor or hide text
/// (a review of 2026-12-06 found lists of such characters incomplete) — at most `max` bytes
/// of whole escapes; and how many bytes of `t` were cut.
pub fn escape_within(t: &str, max: usize) -> (String, usize) {
    let mut out = String::with_capacity(t.len().min(max));
    for (i, c) in t.char_indices() {
        let mut buf = [0u8; 4];
        let piece: std::borrow::Cow<'_, str> = match c {
            '"' => "\\\"".into(),
            '\\' => "\\\\".into(),
            ' '..='~' => std::borrow::Cow::Borrowed(c.encode_utf8(&mut buf)),
            c => format!("\\u{{{:04x}}}", c as u32).into(),
        };
        if out.len() + piece.len() > max {
            return (out, t.len() - i);
        }
        out.push_str(&piece);
    }
    (out, 0)
}

/// `t` in double quotes, escaped by [`escape_within`] to at most `max` bytes, with a note of
/// what was cut; and how many bytes are between the quotes.
pub fn in_quotes_counted(t: &str, max: usize) -> (String, usize) {
    let (inside, cut) = escape_within(t, max);
    let n = inside.len();
    let note = if cut > 0 { format!(" (… {cut} bytes cut)") } else { String::new() };
    (format!("\"{inside}\"{note}"), n)
}

#[cfg(test)]
mod tests {
    use super::escape_within;

    #[test]
    fn nothing_but_printable_ascii_passes_and_the_bound_counts_whole_escapes() {
        assert_eq!(escape_within("a\"b\\c", 64), ("a\\\"b\\\\c".to_string(), 0));
        assert_eq!(escape_within("\u{1b}[2K”\u{202e}", 64), ("\\u{001b}[2K\\u{201d}\\u{202e}".to_string(), 0));
        // An escape that does not fit whole is cut, with what follows it.
        assert_eq!(escape_within("ab\u{1b}cd", 5), ("ab".to_string(), 3));
    }
}
