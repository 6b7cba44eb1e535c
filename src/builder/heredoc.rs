//! Heredoc masking: lets a Dockerfile parser without heredoc support locate instructions by span.
//!
//! [`mask`] returns a text of exactly the same byte length in which every heredoc body line (and its
//! terminator) of a `RUN`, `COPY` or `ADD` instruction is turned into a comment line. Spans found in the
//! masked text are valid in the original, so edits are made on the original text and heredocs stay
//! byte-for-byte intact.

/// Instructions whose arguments may open heredocs.
const HEREDOC_INSTRUCTIONS: [&str; 3] = ["RUN", "COPY", "ADD"];

/// A heredoc waiting for its terminator.
#[derive(Debug, PartialEq)]
struct Pending {
    word: String,
    strip_tabs: bool,
}

/// Masks heredoc bodies as comments, keeping every byte offset (see the module docs).
pub(crate) fn mask(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut pending: std::collections::VecDeque<Pending> = Default::default();
    let mut continuation = false;
    let mut heredoc_allowed = false;
    for line in text.split_inclusive('\n') {
        let (content, end) = split_line_end(line);
        if let Some(open) = pending.front() {
            let candidate = if open.strip_tabs {
                content.trim_start_matches('\t')
            } else {
                content
            };
            if candidate == open.word {
                pending.pop_front();
            }
            out.push_str(&masked(content));
            out.push_str(end);
            continue;
        }
        let trimmed = content.trim_start();
        out.push_str(line);
        if trimmed.starts_with('#') || (trimmed.is_empty() && continuation) {
            continue;
        }
        if !continuation {
            let keyword = trimmed.split_whitespace().next().unwrap_or("");
            heredoc_allowed = HEREDOC_INSTRUCTIONS
                .iter()
                .any(|k| k.eq_ignore_ascii_case(keyword));
        }
        if heredoc_allowed {
            pending.extend(markers(content));
        }
        continuation = content.trim_end().ends_with('\\') && pending.is_empty();
    }
    out
}

/// Splits a line into its content and its line ending (`\n`, `\r\n` or nothing).
fn split_line_end(line: &str) -> (&str, &str) {
    if let Some(c) = line.strip_suffix("\r\n") {
        (c, "\r\n")
    } else if let Some(c) = line.strip_suffix('\n') {
        (c, "\n")
    } else {
        (line, "")
    }
}

/// A comment line of the same byte length as `content` (empty stays empty).
fn masked(content: &str) -> String {
    if content.is_empty() {
        String::new()
    } else {
        let mut s = String::with_capacity(content.len());
        s.push('#');
        s.extend(std::iter::repeat_n(' ', content.len() - 1));
        s
    }
}

/// The heredoc markers (`<<EOF`, `<<-EOF`, `<<"EOF"`, `<<'EOF'`) of one line, in order.
fn markers(line: &str) -> Vec<Pending> {
    let bytes = line.as_bytes();
    let mut found = Vec::new();
    let mut i = 0;
    while i + 1 < bytes.len() {
        if bytes[i] != b'<' || bytes[i + 1] != b'<' {
            i += 1;
            continue;
        }
        let mut j = i + 2;
        if bytes.get(j) == Some(&b'<') {
            // A here-string (`<<<`), not a heredoc.
            i = j + 1;
            continue;
        }
        let strip_tabs = bytes.get(j) == Some(&b'-');
        if strip_tabs {
            j += 1;
        }
        let quote = bytes.get(j).copied().filter(|b| *b == b'"' || *b == b'\'');
        if quote.is_some() {
            j += 1;
        }
        let start = j;
        while j < bytes.len() && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_') {
            j += 1;
        }
        let word = &line[start..j];
        let first_ok = word
            .bytes()
            .next()
            .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_');
        let quote_ok = quote.is_none_or(|q| bytes.get(j) == Some(&q));
        if first_ok && quote_ok {
            found.push(Pending {
                word: word.to_string(),
                strip_tabs,
            });
        }
        i = j.max(i + 2);
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_only_heredoc_bodies_and_keeps_length() {
        let cases: &[(&str, &str)] = &[
            ("FROM a\nRUN echo hi\n", "FROM a\nRUN echo hi\n"),
            (
                "RUN <<EOF\necho hi\nEOF\nCMD x\n",
                "RUN <<EOF\n#      \n#  \nCMD x\n",
            ),
            (
                "RUN <<-\"END\"\n\techo\n\tEND\n",
                "RUN <<-\"END\"\n#    \n#   \n",
            ),
            (
                "COPY <<file /a\nFROM x\n\nfile\n",
                "COPY <<file /a\n#     \n\n#   \n",
            ),
            (
                "COPY <<A <<B /\n1\nA\n2\nB\nX\n",
                "COPY <<A <<B /\n#\n#\n#\n#\nX\n",
            ),
            (
                "RUN echo $((1<<2)) <<<word\nX\n",
                "RUN echo $((1<<2)) <<<word\nX\n",
            ),
            ("LABEL a=\"<<EOF\"\nX\n", "LABEL a=\"<<EOF\"\nX\n"),
            (
                "RUN a \\\n  && cat <<EOF\nbody\nEOF\n",
                "RUN a \\\n  && cat <<EOF\n#   \n#  \n",
            ),
            ("RUN <<EOF\r\nx\r\nEOF\r\n", "RUN <<EOF\r\n#\r\n#  \r\n"),
            ("RUN <<EOF\nunterminated\n", "RUN <<EOF\n#           \n"),
            ("# RUN <<EOF\nFROM x\n", "# RUN <<EOF\nFROM x\n"),
            ("RUN <<'E F'\nX\n", "RUN <<'E F'\nX\n"),
        ];
        for (input, want) in cases {
            let got = mask(input);
            assert_eq!(got, *want, "input {input:?}");
            assert_eq!(got.len(), input.len());
        }
    }

    #[test]
    fn multibyte_bodies_keep_byte_length() {
        let input = "RUN <<EOF\nécho ✓\nEOF\n";
        let got = mask(input);
        assert_eq!(got.len(), input.len());
        assert!(got.is_char_boundary(input.find("EOF\n").unwrap_or(0)));
    }
}
