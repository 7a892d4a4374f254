//! Positions in TOML text for error messages: the config, knowledge and handshake-profile
//! loaders all report where a problem is as a 1-based line and column.

/// 1-based line and column (in characters) of a byte offset, clamped to the text (the toml
/// crate gives spans as byte offsets; editors count characters).
pub fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let mut end = offset.min(text.len());
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let before = &text[..end];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        assert_eq!(line_col("ab\ncd", 0), (1, 1));
        assert_eq!(line_col("ab\ncd", 4), (2, 2));
        assert_eq!(line_col("ab", 99), (1, 3));
        assert_eq!(line_col("é\nx", 1), (1, 1));
    }
}
