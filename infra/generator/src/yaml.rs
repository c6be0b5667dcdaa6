//! Writing YAML text by hand, line by line: the template keeps its comments and its layout, which
//! a serialiser would drop.

/// The text being generated.
#[derive(Debug, Default)]
pub struct Out {
    text: String,
}

impl Out {
    /// One line, indented by `indent` spaces.
    pub fn line(&mut self, indent: usize, text: &str) {
        self.text.extend(std::iter::repeat_n(' ', indent));
        self.text.push_str(text);
        self.text.push('\n');
    }

    /// Each line of `text` as a `# ` comment; nothing for an empty text.
    pub fn comment(&mut self, indent: usize, text: &str) {
        for line in text.lines() {
            if line.is_empty() {
                self.line(indent, "#");
            } else {
                self.line(indent, &format!("# {line}"));
            }
        }
    }

    /// Each line of a YAML fragment, indented by `indent` more spaces.
    pub fn block(&mut self, indent: usize, fragment: &str) {
        for line in fragment.lines() {
            if line.is_empty() {
                self.text.push('\n');
            } else {
                self.line(indent, line);
            }
        }
    }

    pub fn blank(&mut self) {
        self.text.push('\n');
    }

    pub fn into_string(self) -> String {
        self.text
    }
}

/// A string as a YAML scalar: plain when YAML reads it back unchanged as a string, else
/// double-quoted.
pub fn scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text.trim() == text
        && !text.contains(": ")
        && !text.contains(" #")
        && !text.ends_with(':')
        && !text.contains(['\n', '"', '\\'])
        && !text.starts_with([
            '-', '?', ':', ',', '[', ']', '{', '}', '#', '&', '*', '!', '|', '>', '\'', '%', '@',
            '`',
        ])
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "~"
        )
        && text.parse::<f64>().is_err();
    if plain {
        text.to_string()
    } else {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        format!("\"{escaped}\"")
    }
}

/// The lines of a folded (`>-`) scalar holding `text`, each at most `width` characters unless a
/// word is longer: YAML joins them back with single spaces.
pub fn folded(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut current = String::new();
    for word in text.split_whitespace() {
        if !current.is_empty() && current.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut current));
        }
        if !current.is_empty() {
            current.push(' ');
        }
        current.push_str(word);
    }
    if !current.is_empty() {
        lines.push(current);
    }
    lines
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scalars_are_plain_only_when_they_read_back_unchanged() {
        assert_eq!(
            scalar("KooGallery basic interface (POST /saas) - SaaS"),
            "KooGallery basic interface (POST /saas) - SaaS"
        );
        assert_eq!(scalar("the ISV's product"), "the ISV's product");
        assert_eq!(scalar("a: b"), "\"a: b\"");
        assert_eq!(scalar("- x"), "\"- x\"");
        assert_eq!(scalar("true"), "\"true\"");
        assert_eq!(scalar("2.0"), "\"2.0\"");
        assert_eq!(scalar("say \"hi\""), "\"say \\\"hi\\\"\"");
        for text in [
            "a: b",
            "- x",
            "true",
            "2.0",
            "x #y",
            "say \"hi\"",
            "plain text",
        ] {
            let parsed: String = serde_yaml::from_str(&scalar(text)).unwrap();
            assert_eq!(parsed, text);
        }
    }

    #[test]
    fn folded_lines_join_back_to_the_text() {
        let text = "one two three four five six seven eight nine ten";
        let lines = folded(text, 14);
        assert!(lines.iter().all(|l| l.len() <= 14), "{lines:?}");
        assert_eq!(lines.join(" "), text);
    }
}
