//! The small, topology-independent result of analysing one statement: relations, scopes for
//! column resolution, predicates over column slots, and links through subqueries. It is cached
//! per statement shape and evaluated against a `Topology` and bound values on every decision.

use crate::types::PgType;

pub(crate) type RelId = usize;
pub(crate) type ScopeId = usize;
pub(crate) type RegionId = usize;
pub(crate) type ColId = usize;

/// A constant expression whose value is known only at decision time (literal slot, parameter).
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ValueExpr {
    /// `$n`: a Bind parameter (n < literal base) or a stripped literal (n >= literal base).
    Slot(u32),
    /// A literal that was not stripped into a slot.
    Number(Box<str>),
    String(Box<str>),
    Null,
    Bool(bool),
    Cast(Box<ValueExpr>, CastTarget),
    Neg(Box<ValueExpr>),
    Arith(ArithOp, Box<ValueExpr>, Box<ValueExpr>),
    Abs(Box<ValueExpr>),
    Array(Vec<ValueExpr>),
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum ArithOp {
    Add,
    Sub,
    Mul,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CastTarget {
    pub ty: PgType,
    pub array: bool,
}

/// A WHERE / ON predicate as far as shard pruning cares.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Pred {
    And(Vec<Pred>),
    Or(Vec<Pred>),
    Not(Box<Pred>),
    Eq(ColId, ValueExpr),
    Ne(ColId, ValueExpr),
    In(ColId, Vec<ValueExpr>),
    AnyEq(ColId, ValueExpr),
    ColEq(ColId, ColId),
    /// TRUE / FALSE / NULL (None).
    Const(Option<bool>),
    Opaque,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RelSource {
    Base {
        schema: Option<Box<str>>,
        name: Box<str>,
    },
    /// A subquery, CTE reference or pulled-up IN sublink; `outputs` are its column names
    /// (None when they cannot be listed, e.g. `SELECT *`).
    Derived {
        outputs: Option<Vec<Box<str>>>,
        star_of: Option<RelId>,
    },
    /// A function in FROM, VALUES, …: only its alias columns are known.
    Opaque {
        columns: Option<Vec<Box<str>>>,
    },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Rel {
    pub source: RelSource,
    pub region: RegionId,
    pub alias: Option<Box<str>>,
    /// On the nullable side of an outer join (or inside an anti-join).
    pub nullable: bool,
    /// Pulled up from an `EXISTS` / `NOT EXISTS` sublink (a semi- or anti-join): Citus plans a
    /// sublink it cannot push down on its own (recursively), so it never proves a join error.
    pub sublink: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub(crate) struct Scope {
    pub parent: Option<ScopeId>,
    /// Visible name (alias, else table name) → relation.
    pub members: Vec<(Box<str>, RelId)>,
    /// JOIN … USING merged columns: name → the slot that stands for it.
    pub using: Vec<(Box<str>, Option<ColId>)>,
}

/// A column reference: resolved at analysis time when qualified, else at decision time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct ColSlot {
    pub scope: ScopeId,
    pub name: Box<str>,
    pub fixed: Option<RelId>,
    /// Candidate relations for USING sides; None = whole scope chain.
    pub among: Option<(RelId, RelId)>,
    /// Qualified but the qualifier matched nothing: never resolves.
    pub dead: bool,
}

/// A conjunct of some region's WHERE/ON.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Conj {
    pub pred: Pred,
    pub region: RegionId,
    /// Outer-join ON / semi- and anti-join quals restrict only these relations (id range), and
    /// equalities flow one way into them.
    pub only: Option<(RelId, RelId)>,
    /// Ignored when any of these scopes turns out correlated (a sublink PostgreSQL keeps as SubPlan).
    pub unless_correlated: Vec<ScopeId>,
}

/// An output column of a derived relation tied to what produces it inside.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Link {
    pub rel: RelId,
    pub column: Box<str>,
    pub target: LinkTarget,
    /// Flattened subqueries share equivalences both ways; others only receive pushed-down quals.
    pub both_ways: bool,
    pub unless_correlated: Vec<ScopeId>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum LinkTarget {
    Col(ColId),
    Value(ValueExpr),
    /// `SELECT *` over one relation: every column of the derived relation is that relation's.
    Star(RelId),
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RowValue {
    Value(ValueExpr),
    Default,
    /// An expression evaluated at run time (function call, column arithmetic…).
    Computed,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum SetValue {
    Col(ColId),
    Value(ValueExpr),
    Computed,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum InsertSource {
    Values(Vec<Vec<RowValue>>),
    /// INSERT … SELECT: what each output column of the SELECT is (a column slot or not).
    Select(Vec<Option<ColId>>),
    DefaultValues,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Dml {
    Select,
    Insert { target: RelId, columns: Option<Vec<Box<str>>>, source: InsertSource },
    Update { target: RelId, sets: Vec<(Box<str>, SetValue)> },
    Delete { target: RelId },
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Model {
    pub rels: Vec<Rel>,
    pub scopes: Vec<Scope>,
    pub cols: Vec<ColSlot>,
    pub conjs: Vec<Conj>,
    pub links: Vec<Link>,
    pub regions: usize,
    pub dml: Dml,
    /// FOR UPDATE / FOR SHARE anywhere.
    pub locking: bool,
    /// Why the statement cannot be analysed (reported as unknown).
    pub giveup: Option<String>,
    /// Scopes found correlated while analysing (qualified outer references).
    pub correlated: Vec<bool>,
}

impl Default for Model {
    fn default() -> Self {
        Model {
            rels: Vec::new(),
            scopes: Vec::new(),
            cols: Vec::new(),
            conjs: Vec::new(),
            links: Vec::new(),
            regions: 1,
            dml: Dml::Select,
            locking: false,
            giveup: None,
            correlated: Vec::new(),
        }
    }
}
