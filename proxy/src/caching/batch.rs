//! The shape of an extended-protocol batch (Parse … Sync), as the relay sees its frames go by.
//! Only one shape is served from the cache: an optional Parse of the unnamed statement, one Bind
//! of it to the unnamed portal, an optional Describe of that portal and one Execute of all its
//! rows. Anything else (Flush, a second Bind, a named portal, a row limit, Describe of the
//! statement, a named Parse that must reach the coordinator) spoils it, and the batch is relayed.

use citus_proxy_cache::Protocol;

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum Parsed {
    #[default]
    No,
    Unnamed,
    Named,
}

#[derive(Debug, Default, Clone)]
pub struct BatchShape {
    parse: Parsed,
    binds: u8,
    describe: bool,
    executes: u8,
    spoiled: bool,
    /// A Bind or Describe named the unnamed statement without a Parse of it first.
    uses_prior_unnamed: bool,
}

impl BatchShape {
    pub fn parse(&mut self, statement: &[u8]) {
        if self.parse != Parsed::No || self.binds > 0 {
            self.spoiled = true;
        }
        self.parse = if statement.is_empty() { Parsed::Unnamed } else { Parsed::Named };
        if self.parse == Parsed::Named {
            self.spoiled = true;
        }
    }

    pub fn bind(&mut self, portal: &[u8], statement: &[u8]) {
        if statement.is_empty() && self.parse == Parsed::No {
            self.uses_prior_unnamed = true;
        }
        let parsed_other = self.parse == Parsed::Unnamed && !statement.is_empty();
        if self.binds > 0 || !portal.is_empty() || parsed_other {
            self.spoiled = true;
        }
        self.binds = self.binds.saturating_add(1);
    }

    /// Describe: `kind` is b'S' (statement) or b'P' (portal).
    pub fn describe(&mut self, kind: u8, name: &[u8]) {
        if kind == b'S' && name.is_empty() && self.parse == Parsed::No {
            self.uses_prior_unnamed = true;
        }
        if kind != b'P' || !name.is_empty() || self.binds != 1 || self.executes > 0 || self.describe {
            self.spoiled = true;
        }
        self.describe = true;
    }

    pub fn execute(&mut self, portal: &[u8], max_rows: i32) {
        if !portal.is_empty() || max_rows != 0 || self.binds != 1 || self.executes > 0 {
            self.spoiled = true;
        }
        self.executes = self.executes.saturating_add(1);
    }

    /// Any other frame inside the batch (Flush, Close, FunctionCall…).
    pub fn other(&mut self) {
        self.spoiled = true;
    }

    pub fn is_spoiled(&self) -> bool {
        self.spoiled
    }

    /// The protocol the response was produced under, when the batch can be served from the cache.
    pub fn cacheable(&self) -> Option<Protocol> {
        (!self.spoiled && self.binds == 1 && self.executes == 1)
            .then_some(Protocol::Extended { parse: self.parse == Parsed::Unnamed, describe: self.describe })
    }

    pub fn uses_prior_unnamed(&self) -> bool {
        self.uses_prior_unnamed
    }

    pub fn parsed_unnamed(&self) -> bool {
        self.parse == Parsed::Unnamed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let mut b = BatchShape::default();
        b.parse(b"");
        b.bind(b"", b"");
        b.describe(b'P', b"");
        b.execute(b"", 0);
        assert_eq!(b.cacheable(), Some(Protocol::Extended { parse: true, describe: true }));
        assert!(!b.uses_prior_unnamed());

        let mut b = BatchShape::default();
        b.bind(b"", b"s1");
        b.execute(b"", 0);
        assert_eq!(b.cacheable(), Some(Protocol::Extended { parse: false, describe: false }));

        let mut b = BatchShape::default();
        b.bind(b"", b"");
        b.execute(b"", 0);
        assert!(b.uses_prior_unnamed());

        let spoil = |f: &dyn Fn(&mut BatchShape)| {
            let mut b = BatchShape::default();
            f(&mut b);
            b.cacheable()
        };
        assert_eq!(
            spoil(&|b| {
                b.parse(b"s1");
                b.bind(b"", b"s1");
                b.execute(b"", 0)
            }),
            None,
            "named Parse must reach the coordinator"
        );
        assert_eq!(
            spoil(&|b| {
                b.bind(b"p1", b"s1");
                b.execute(b"p1", 0)
            }),
            None,
            "named portal"
        );
        assert_eq!(
            spoil(&|b| {
                b.bind(b"", b"s1");
                b.execute(b"", 10)
            }),
            None,
            "row limit"
        );
        assert_eq!(
            spoil(&|b| {
                b.bind(b"", b"s1");
                b.execute(b"", 0);
                b.bind(b"", b"s1");
                b.execute(b"", 0)
            }),
            None,
            "two statements"
        );
        assert_eq!(
            spoil(&|b| {
                b.parse(b"");
                b.describe(b'S', b"");
                b.bind(b"", b"");
                b.execute(b"", 0)
            }),
            None,
            "statement describe"
        );
        assert_eq!(
            spoil(&|b| {
                b.bind(b"", b"s1");
                b.other();
                b.execute(b"", 0)
            }),
            None,
            "flush"
        );
        assert_eq!(spoil(&|b| { b.bind(b"", b"s1") }), None, "no execute");
    }
}
