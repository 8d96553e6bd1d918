//! Wildcard patterns for file names, document properties and addresses.

/// A case-insensitive wildcard pattern: `*` any run of characters, `?` one character.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Glob {
    source: String,
    chars: Vec<char>,
}

impl Glob {
    pub(crate) fn new(pattern: &str) -> Self {
        Self {
            source: pattern.to_string(),
            chars: pattern.chars().flat_map(char::to_lowercase).collect(),
        }
    }

    pub(crate) fn source(&self) -> &str {
        &self.source
    }

    /// Whether `text` matches the whole pattern. Linear-time two-pointer match with one
    /// backtrack point (the classic wildcard algorithm): O(len(text) × len(pattern)) at worst.
    pub(crate) fn matches(&self, text: &str) -> bool {
        let text: Vec<char> = text.chars().flat_map(char::to_lowercase).collect();
        let p = &self.chars;
        let (mut ti, mut pi) = (0usize, 0usize);
        let mut star: Option<(usize, usize)> = None;
        while ti < text.len() {
            match p.get(pi) {
                Some('*') => {
                    star = Some((pi, ti));
                    pi += 1;
                }
                Some(&c) if c == '?' || Some(&c) == text.get(ti) => {
                    pi += 1;
                    ti += 1;
                }
                _ => match star {
                    Some((sp, st)) => {
                        pi = sp + 1;
                        ti = st + 1;
                        star = Some((sp, st + 1));
                    }
                    None => return false,
                },
            }
        }
        p.get(pi..)
            .is_some_and(|rest| rest.iter().all(|&c| c == '*'))
    }
}

/// One entry of an address list: `alice@example.com`, `*@example.com`, `example.com` (the
/// domain exactly) or `*.example.com` (its subdomains), all case-insensitive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AddressPattern {
    glob: Glob,
    whole_address: bool,
}

impl AddressPattern {
    pub(crate) fn new(pattern: &str) -> Self {
        let pattern = pattern.trim();
        Self {
            whole_address: pattern.contains('@'),
            glob: Glob::new(pattern),
        }
    }

    pub(crate) fn source(&self) -> &str {
        self.glob.source()
    }

    pub(crate) fn matches(&self, address: &str) -> bool {
        if self.whole_address {
            self.glob.matches(address)
        } else {
            self.glob.matches(domain_of(address))
        }
    }
}

/// The domain of an address (after the last `@`), or the whole string when it has none.
pub(crate) fn domain_of(address: &str) -> &str {
    address.rsplit_once('@').map_or(address, |(_, d)| d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        let g = Glob::new("Finance*");
        assert!(g.matches("finance team"));
        assert!(g.matches("FINANCE"));
        assert!(!g.matches("the finance team"));
        assert!(Glob::new("*.xls?").matches("Book1.XLSX"));
        assert!(!Glob::new("*.xls?").matches("Book1.xls"));
        assert!(Glob::new("a*b*c").matches("aXbYbZc"));
        assert!(!Glob::new("a*b*c").matches("aXbYbZ"));
        assert!(Glob::new("*").matches(""));
        assert!(Glob::new("grüße.txt").matches("GRÜßE.TXT"));
    }

    #[test]
    fn addresses() {
        let d = AddressPattern::new("example.com");
        assert!(d.matches("bob@Example.COM"));
        assert!(!d.matches("bob@mail.example.com"));
        let sub = AddressPattern::new("*.example.com");
        assert!(sub.matches("bob@mail.example.com"));
        assert!(!sub.matches("bob@example.com"));
        let a = AddressPattern::new("news*@example.com");
        assert!(a.matches("newsletter@example.com"));
        assert!(!a.matches("bob@example.com"));
    }
}
