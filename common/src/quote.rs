//! Text another party wrote (a host, a node, a dApp), made safe to show inside quotes: the
//! one rule the CLI and the alloy client both apply to it; and made safe to print on a line
//! of its own ([`printable`]).

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

/// A character that a terminal obeys rather than shows, or that reorders or hides the
/// text around it: control characters (C0, DEL, C1: escape sequences move the cursor,
/// erase lines, hide text) and the format characters of bidirectional text and zero width.
pub fn hides_text(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{00ad}'
                | '\u{061c}'
                | '\u{200b}'..='\u{200f}'
                | '\u{2028}'..='\u{202e}'
                | '\u{0600}'..='\u{0605}'
                | '\u{06dd}'
                | '\u{070f}'
                | '\u{115f}'..='\u{1160}'
                | '\u{034f}'
                | '\u{17b4}'..='\u{17b5}'
                | '\u{180b}'..='\u{180f}'
                | '\u{2800}'
                | '\u{2060}'..='\u{206f}'
                | '\u{3164}'
                | '\u{fe00}'..='\u{fe0f}'
                | '\u{feff}'
                | '\u{ffa0}'
                | '\u{fff9}'..='\u{fffb}'
                | '\u{1bca0}'..='\u{1bca3}'
                | '\u{1d173}'..='\u{1d17a}'
                | '\u{e0000}'..='\u{e0fff}'
        )
}

/// Text the host (or an agent) wrote, made safe to print on one line: every character
/// [`hides_text`] says a terminal would obey (newlines included) is written as `\u{…}`, and
/// so is a `\` that begins `u{` (`\u{005c}`: another party's literal `\u{1b}` would
/// otherwise read as one of these escapes; a review of 2026-12-06) — no other `\`, so text
/// already quoted by [`in_quotes_counted`] keeps its `\"` and `\\` as they are — so
/// no reply can erase, recolour, hide or forge a line the CLI prints as its own — a host's
/// refusal drawing "revoked: …, signed by the enclave" over the real answer (found
/// 2026-12-04 by a review).
pub fn printable(t: &str) -> std::borrow::Cow<'_, str> {
    if !t.chars().any(hides_text) && !t.contains("\\u{") {
        return std::borrow::Cow::Borrowed(t);
    }
    let mut out = String::with_capacity(t.len() + 16);
    for (i, c) in t.char_indices() {
        if hides_text(c) || (c == '\\' && t[i + 1..].starts_with("u{")) {
            out.push_str(&format!("\\u{{{:04x}}}", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
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
