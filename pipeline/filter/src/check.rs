//! The filter's own check of the parsed expression, before DataFusion sees it: only
//! pure, per-entry constructs pass, columns must exist, and comparisons must be between
//! compatible types. DataFusion would coerce `path > 5` into a string comparison and
//! report unknown functions without a position; this check says where and what.

use arrow_schema::{DataType, SchemaRef};
use datafusion_sql::sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr, FunctionArguments,
    Ident, ObjectNamePart, Spanned, Subscript, UnaryOperator, Value,
};
use datafusion_sql::sqlparser::tokenizer::Span;

use crate::{FilterError, MAX_DEPTH};

/// The scalar functions a filter may call. All are deterministic and side-effect free.
pub const ALLOWED_FUNCTIONS: &[&str] = &[
    "lower",
    "upper",
    "btrim",
    "ltrim",
    "rtrim",
    "starts_with",
    "ends_with",
    "contains",
    "strpos",
    "character_length",
    "char_length",
    "length",
    "octet_length",
    "substr",
    "regexp_like",
    "coalesce",
    "nullif",
    "array_has",
    "array_has_any",
    "array_has_all",
    "cardinality",
    "array_length",
];

const AGGREGATES: &[&str] = &[
    "count",
    "sum",
    "avg",
    "mean",
    "min",
    "max",
    "median",
    "array_agg",
    "string_agg",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "var",
    "variance",
    "var_pop",
    "var_samp",
    "bool_and",
    "bool_or",
    "bit_and",
    "bit_or",
    "bit_xor",
    "approx_distinct",
    "approx_median",
    "approx_percentile_cont",
    "percentile_cont",
    "first_value",
    "last_value",
    "nth_value",
    "grouping",
    "corr",
    "covar",
    "covar_pop",
    "covar_samp",
];

const WINDOW_FUNCTIONS: &[&str] = &[
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
];

/// Refused: their value changes between evaluations, so a subscription would not mean
/// the same thing from one batch to the next. Time windows are the API's business.
const NON_DETERMINISTIC: &[&str] = &[
    "random",
    "rand",
    "uuid",
    "now",
    "current_timestamp",
    "current_date",
    "current_time",
    "localtime",
    "localtimestamp",
    "today",
    "sysdate",
];

/// Keywords the lenient generic dialect would take for column names (`x >= AND`).
const KEYWORDS: &[&str] = &[
    "and", "or", "not", "in", "is", "like", "ilike", "between", "select", "from", "where", "union",
    "drop", "delete", "insert", "update", "case", "when", "then", "else", "end",
];

/// The coarse types the check reasons with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ty {
    Bool,
    Int,
    Float,
    Str,
    Time,
    Bytes,
    List,
    Map,
    Null,
    /// Not known here; DataFusion decides.
    Any,
}

impl Ty {
    fn of(dt: &DataType) -> Ty {
        match dt {
            DataType::Boolean => Ty::Bool,
            DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::UInt8
            | DataType::UInt16
            | DataType::UInt32
            | DataType::UInt64 => Ty::Int,
            DataType::Float16 | DataType::Float32 | DataType::Float64 => Ty::Float,
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => Ty::Str,
            DataType::Timestamp(..) => Ty::Time,
            DataType::Binary | DataType::LargeBinary | DataType::BinaryView => Ty::Bytes,
            DataType::List(_) | DataType::LargeList(_) => Ty::List,
            DataType::Map(..) => Ty::Map,
            DataType::Null => Ty::Null,
            _ => Ty::Any,
        }
    }

    fn noun(self) -> &'static str {
        match self {
            Ty::Bool => "a boolean",
            Ty::Int => "an integer",
            Ty::Float => "a number",
            Ty::Str => "a string",
            Ty::Time => "a timestamp",
            Ty::Bytes => "binary",
            Ty::List => "a list",
            Ty::Map => "a map",
            Ty::Null => "NULL",
            Ty::Any => "a value",
        }
    }

    fn numeric(self) -> bool {
        matches!(self, Ty::Int | Ty::Float)
    }
}

/// A checked sub-expression: its type, a description for messages, and where it is.
#[derive(Debug, Clone)]
pub struct Typed {
    pub ty: Ty,
    pub what: String,
    pub span: Span,
    column: bool,
    literal: bool,
}

impl Typed {
    /// Whether `self` may stand where a `want` is expected.
    fn fits(&self, want: Ty) -> bool {
        self.ty == want || matches!(self.ty, Ty::Null | Ty::Any) || want == Ty::Any
    }
}

pub struct Checker<'a> {
    schema: &'a SchemaRef,
    domains: &'a crate::Domains,
}

type R = Result<Typed, FilterError>;

impl<'a> Checker<'a> {
    pub fn new(schema: &'a SchemaRef, domains: &'a crate::Domains) -> Checker<'a> {
        Checker { schema, domains }
    }

    /// `protocol = 'htpp'` matches nothing: a string compared with a column of known
    /// values must be one of them.
    fn in_domain(&self, column: &Expr, value: &Expr) -> Result<(), FilterError> {
        let (Expr::Identifier(ident), Expr::Value(v)) = (column, value) else {
            return Ok(());
        };
        let Value::SingleQuotedString(text) = &v.value else {
            return Ok(());
        };
        let name = match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        };
        let Some(allowed) = self.domains.get(&name) else {
            return Ok(());
        };
        if allowed.iter().any(|a| a == text) {
            return Ok(());
        }
        let close = allowed
            .iter()
            .map(|a| (edit_distance(&text.to_lowercase(), a), a))
            .filter(|(d, a)| *d <= 2.max(a.len() / 3))
            .min_by_key(|(d, _)| *d);
        let hint = match close {
            Some((_, a)) => format!(" — did you mean '{a}'?"),
            None => format!(" (one of: {})", allowed.join(", ")),
        };
        Err(FilterError::at_span(value.span(), |at| {
            format!("unknown {name} '{text}'{at}{hint}")
        }))
    }

    fn typed(&self, e: &Expr, ty: Ty) -> Typed {
        let literal = matches!(e, Expr::Value(_));
        let text = e.to_string();
        let what = if literal {
            format!("{text} ({})", ty.noun())
        } else {
            let mut snip: String = text.chars().take(40).collect();
            if snip.len() < text.len() {
                snip.push('…');
            }
            format!("`{snip}` ({})", ty.noun())
        };
        Typed {
            ty,
            what,
            span: e.span(),
            column: false,
            literal,
        }
    }

    pub fn check(&self, e: &Expr, depth: usize) -> R {
        if depth > MAX_DEPTH {
            return Err(FilterError::at_span(e.span(), |at| {
                format!("the filter is nested too deeply{at}: the limit is {MAX_DEPTH} levels")
            }));
        }
        let d = depth + 1;
        match e {
            Expr::Identifier(ident) => self.column(ident),
            Expr::CompoundIdentifier(parts) => {
                let dotted: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
                let joined = dotted.join("_").to_lowercase();
                let hint = self
                    .suggest(&joined)
                    .map(|s| format!(" — did you mean '{s}'?"))
                    .unwrap_or_default();
                Err(FilterError::at_span(e.span(), |at| {
                    format!(
                        "unknown column '{}'{at}: columns are not qualified{hint}",
                        dotted.join(".")
                    )
                }))
            }
            Expr::Value(v) => {
                let ty = match &v.value {
                    Value::Number(n, _) => {
                        if n.to_string().parse::<i64>().is_ok() {
                            Ty::Int
                        } else {
                            Ty::Float
                        }
                    }
                    Value::SingleQuotedString(_) => Ty::Str,
                    Value::Boolean(_) => Ty::Bool,
                    Value::Null => Ty::Null,
                    Value::Placeholder(p) => {
                        return Err(FilterError::at_span(e.span(), |at| {
                            format!(
                                "placeholder '{p}'{at} is not supported; write the value itself"
                            )
                        }));
                    }
                    other => {
                        return Err(FilterError::at_span(e.span(), |at| {
                            format!(
                                "literal {other}{at} is not supported; write strings in 'single quotes'"
                            )
                        }));
                    }
                };
                Ok(self.typed(e, ty))
            }
            Expr::Nested(inner) => {
                let t = self.check(inner, d)?;
                Ok(Typed {
                    span: e.span(),
                    ..t
                })
            }
            Expr::BinaryOp { left, op, right } => self.binary(e, left, op, right, depth),
            Expr::UnaryOp { op, expr } => {
                let t = self.check(expr, d)?;
                match op {
                    UnaryOperator::Not => {
                        self.want(&t, Ty::Bool, "NOT")?;
                        Ok(self.typed(e, Ty::Bool))
                    }
                    UnaryOperator::Minus | UnaryOperator::Plus => {
                        self.want_numeric(&t, &op.to_string())?;
                        Ok(self.typed(e, t.ty))
                    }
                    other => Err(unsupported(e, &format!("operator {other}"))),
                }
            }
            Expr::IsNull(x) | Expr::IsNotNull(x) => {
                self.check(x, d)?;
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::IsTrue(x)
            | Expr::IsFalse(x)
            | Expr::IsNotTrue(x)
            | Expr::IsNotFalse(x)
            | Expr::IsUnknown(x)
            | Expr::IsNotUnknown(x) => {
                let t = self.check(x, d)?;
                self.want(&t, Ty::Bool, "IS TRUE/FALSE/UNKNOWN")?;
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                let (a, b) = (self.check(a, d)?, self.check(b, d)?);
                self.comparable(&a, &b)?;
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::InList { expr, list, .. } => {
                let t = self.check(expr, d)?;
                for item in list {
                    let i = self.check(item, d)?;
                    self.comparable(&t, &i)?;
                    self.in_domain(expr, item)?;
                }
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let t = self.check(expr, d)?;
                for bound in [low, high] {
                    let b = self.check(bound, d)?;
                    self.comparable(&t, &b)?;
                }
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::Like {
                any,
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                any,
                expr,
                pattern,
                escape_char,
                ..
            } => {
                if *any || escape_char.is_some() {
                    return Err(unsupported(e, "LIKE ANY and LIKE … ESCAPE"));
                }
                let t = self.check(expr, d)?;
                self.want(&t, Ty::Str, "LIKE")?;
                let p = self.check(pattern, d)?;
                self.want(&p, Ty::Str, "LIKE")?;
                Ok(self.typed(e, Ty::Bool))
            }
            Expr::CompoundFieldAccess { root, access_chain } => {
                let t = self.check(root, d)?;
                let [AccessExpr::Subscript(Subscript::Index { index })] = access_chain.as_slice()
                else {
                    return Err(unsupported(e, "this kind of field access"));
                };
                let i = self.check(index, d)?;
                match t.ty {
                    Ty::Map => self.want(&i, Ty::Str, "a map key")?,
                    Ty::List => self.want(&i, Ty::Int, "a list index")?,
                    _ => {
                        return Err(FilterError::at_span(t.span, |at| {
                            format!(
                                "{}{at} cannot be indexed; only maps (labels, headers) and lists can",
                                t.what
                            )
                        }));
                    }
                }
                Ok(self.typed(e, Ty::Str))
            }
            Expr::Function(f) => self.function(e, f, d),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                let op = operand.as_ref().map(|o| self.check(o, d)).transpose()?;
                let mut result: Option<Typed> = None;
                for w in conditions {
                    let c = self.check(&w.condition, d)?;
                    match &op {
                        Some(o) => self.comparable(o, &c)?,
                        None => self.want(&c, Ty::Bool, "WHEN")?,
                    }
                    let r = self.check(&w.result, d)?;
                    if let Some(prev) = &result {
                        self.comparable(prev, &r)?;
                    }
                    if result.as_ref().is_none_or(|p| p.ty == Ty::Null) {
                        result = Some(r);
                    }
                }
                if let Some(x) = else_result {
                    let r = self.check(x, d)?;
                    if let Some(prev) = &result {
                        self.comparable(prev, &r)?;
                    }
                }
                let ty = result.map_or(Ty::Null, |r| r.ty);
                Ok(self.typed(e, ty))
            }
            Expr::Cast {
                expr, data_type, ..
            } => {
                self.check(expr, d)?;
                let target = data_type.to_string().to_uppercase();
                let ty = if target.contains("INT") {
                    Ty::Int
                } else if ["FLOAT", "DOUBLE", "REAL", "DECIMAL", "NUMERIC"]
                    .iter()
                    .any(|t| target.contains(t))
                {
                    Ty::Float
                } else if ["CHAR", "TEXT", "STRING"]
                    .iter()
                    .any(|t| target.contains(t))
                {
                    Ty::Str
                } else if target.starts_with("BOOL") {
                    Ty::Bool
                } else if target.starts_with("TIMESTAMP") {
                    Ty::Time
                } else {
                    return Err(unsupported(e, &format!("casting to {data_type}")));
                };
                Ok(self.typed(e, ty))
            }
            Expr::Array(arr) => {
                for item in &arr.elem {
                    let t = self.check(item, d)?;
                    self.want(&t, Ty::Str, "a list element")?;
                }
                Ok(self.typed(e, Ty::List))
            }
            Expr::Exists { .. } | Expr::Subquery(_) | Expr::InSubquery { .. } => {
                Err(FilterError::at_span(e.span(), |at| {
                    format!(
                        "subqueries are not allowed in a filter{at}: a filter looks at one entry at a time"
                    )
                }))
            }
            Expr::Wildcard(_) | Expr::QualifiedWildcard(..) => Err(unsupported(e, "'*'")),
            Expr::Interval(_) => Err(unsupported(e, "INTERVAL")),
            _ => Err(unsupported(e, "this construct")),
        }
    }

    fn column(&self, ident: &Ident) -> R {
        let name = match ident.quote_style {
            Some(_) => ident.value.clone(),
            None => ident.value.to_lowercase(),
        };
        if ident.quote_style.is_none() && KEYWORDS.contains(&name.as_str()) {
            return Err(FilterError::at_span(ident.span, |at| {
                format!(
                    "syntax error{at}: expected an expression, found the keyword {}",
                    name.to_uppercase()
                )
            }));
        }
        match self.schema.field_with_name(&name) {
            Ok(field) => Ok(Typed {
                ty: Ty::of(field.data_type()),
                what: format!(
                    "column '{name}' ({}, {})",
                    field.data_type(),
                    Ty::of(field.data_type()).noun()
                ),
                span: ident.span,
                column: true,
                literal: false,
            }),
            Err(_) => {
                let hint = match self.suggest(&name) {
                    Some(s) => format!(" — did you mean '{s}'?"),
                    None if ident.quote_style == Some('"') => {
                        " — strings are written in 'single quotes'; \"double quotes\" name columns"
                            .to_string()
                    }
                    None => String::new(),
                };
                Err(FilterError::at_span(ident.span, |at| {
                    format!("unknown column '{}'{at}{hint}", ident.value)
                }))
            }
        }
    }

    /// The closest column name, when it is close enough to be a likely typo.
    fn suggest(&self, name: &str) -> Option<String> {
        let name = name.to_lowercase();
        self.schema
            .fields()
            .iter()
            .map(|f| (edit_distance(&name, f.name()), f.name()))
            .filter(|(dist, col)| *dist <= 2.max(col.len().min(name.len()) / 3))
            .min_by_key(|(dist, _)| *dist)
            .map(|(_, col)| col.clone())
    }

    fn binary(&self, e: &Expr, left: &Expr, op: &BinaryOperator, right: &Expr, depth: usize) -> R {
        use BinaryOperator as B;
        let name = op.to_string();
        if matches!(op, B::And | B::Or) {
            // A chain of the same AND or OR is one level (`a OR b OR c …` is flat to a
            // user) and is walked without recursion, so long chains cost no stack.
            let mut operands = vec![right];
            let mut spine = left;
            while let Expr::BinaryOp {
                left: l,
                op: o,
                right: r,
            } = spine
                && o == op
            {
                operands.push(r);
                spine = l;
            }
            operands.push(spine);
            for x in operands.into_iter().rev() {
                let t = self.check(x, depth + 1)?;
                self.want(&t, Ty::Bool, &name)?;
            }
            return Ok(self.typed(e, Ty::Bool));
        }
        let l = self.check(left, depth + 1)?;
        let r = self.check(right, depth + 1)?;
        match op {
            B::Eq | B::NotEq | B::Lt | B::LtEq | B::Gt | B::GtEq => {
                self.comparable(&l, &r)?;
                if matches!(op, B::Eq | B::NotEq) {
                    self.in_domain(left, right)?;
                    self.in_domain(right, left)?;
                }
                Ok(self.typed(e, Ty::Bool))
            }
            B::Plus | B::Minus | B::Multiply | B::Divide | B::Modulo => {
                self.want_numeric(&l, &name)?;
                self.want_numeric(&r, &name)?;
                let ty = if l.ty == Ty::Float || r.ty == Ty::Float {
                    Ty::Float
                } else {
                    Ty::Int
                };
                Ok(self.typed(e, ty))
            }
            B::StringConcat => {
                self.want(&l, Ty::Str, &name)?;
                self.want(&r, Ty::Str, &name)?;
                Ok(self.typed(e, Ty::Str))
            }
            B::PGRegexMatch | B::PGRegexIMatch | B::PGRegexNotMatch | B::PGRegexNotIMatch => {
                self.want(&l, Ty::Str, &name)?;
                self.want(&r, Ty::Str, &name)?;
                Ok(self.typed(e, Ty::Bool))
            }
            other => Err(unsupported(e, &format!("operator {other}"))),
        }
    }

    fn function(&self, e: &Expr, f: &Function, d: usize) -> R {
        let name = match f.name.0.as_slice() {
            [ObjectNamePart::Identifier(i)] => i.value.to_lowercase(),
            _ => return Err(unsupported(e, &format!("function name {}", f.name))),
        };
        let refuse = |why: &str| {
            let why = why.to_string();
            FilterError::at_span(e.span(), |at| {
                format!("function '{name}'{at} is not allowed: {why}")
            })
        };
        if f.over.is_some() || WINDOW_FUNCTIONS.contains(&name.as_str()) {
            return Err(refuse(
                "window functions look at other entries; a filter looks at one entry at a time",
            ));
        }
        if AGGREGATES.contains(&name.as_str()) || f.filter.is_some() {
            return Err(refuse(
                "aggregates combine many entries; a filter looks at one entry at a time",
            ));
        }
        if NON_DETERMINISTIC.contains(&name.as_str()) {
            return Err(refuse(
                "its value changes from one evaluation to the next; compare with a fixed value such as timestamp > '2025-01-01T00:00:00Z'",
            ));
        }
        if !ALLOWED_FUNCTIONS.contains(&name.as_str()) {
            return Err(FilterError::at_span(e.span(), |at| {
                format!(
                    "unknown function '{name}'{at}; filters may call: {}",
                    ALLOWED_FUNCTIONS.join(", ")
                )
            }));
        }
        let args = match &f.args {
            FunctionArguments::List(list)
                if list.duplicate_treatment.is_none() && list.clauses.is_empty() =>
            {
                &list.args
            }
            FunctionArguments::Subquery(_) => {
                return Err(FilterError::at_span(e.span(), |at| {
                    format!("subqueries are not allowed in a filter{at}")
                }));
            }
            _ => return Err(unsupported(e, &format!("this form of calling '{name}'"))),
        };
        let mut typed = Vec::with_capacity(args.len());
        for a in args {
            match a {
                FunctionArg::Unnamed(FunctionArgExpr::Expr(x)) => typed.push(self.check(x, d)?),
                _ => return Err(unsupported(e, "named or '*' function arguments")),
            }
        }
        let (min, max, params, ret): (usize, usize, &[Ty], Ty) = match name.as_str() {
            "lower" | "upper" => (1, 1, &[Ty::Str], Ty::Str),
            "btrim" | "ltrim" | "rtrim" => (1, 2, &[Ty::Str, Ty::Str], Ty::Str),
            "starts_with" | "ends_with" | "contains" => (2, 2, &[Ty::Str, Ty::Str], Ty::Bool),
            "strpos" => (2, 2, &[Ty::Str, Ty::Str], Ty::Int),
            "character_length" | "char_length" | "length" | "octet_length" => {
                (1, 1, &[Ty::Str], Ty::Int)
            }
            "substr" => (2, 3, &[Ty::Str, Ty::Int, Ty::Int], Ty::Str),
            "regexp_like" => (2, 3, &[Ty::Str, Ty::Str, Ty::Str], Ty::Bool),
            "array_has" => (2, 2, &[Ty::List, Ty::Str], Ty::Bool),
            "array_has_any" | "array_has_all" => (2, 2, &[Ty::List, Ty::List], Ty::Bool),
            "cardinality" | "array_length" => (1, 1, &[Ty::List], Ty::Int),
            // coalesce and nullif: arguments of one type, the result of that type.
            _ => {
                let (min, max) = if name == "nullif" { (2, 2) } else { (1, 64) };
                arity(e, &name, typed.len(), min, max)?;
                for pair in typed.windows(2) {
                    self.comparable(&pair[0], &pair[1])?;
                }
                let ty = typed
                    .iter()
                    .map(|t| t.ty)
                    .find(|t| *t != Ty::Null)
                    .unwrap_or(Ty::Null);
                return Ok(self.typed(e, ty));
            }
        };
        arity(e, &name, typed.len(), min, max)?;
        for (t, want) in typed.iter().zip(params) {
            self.want(t, *want, &format!("{name}()"))?;
        }
        Ok(self.typed(e, ret))
    }

    fn want(&self, t: &Typed, want: Ty, context: &str) -> Result<(), FilterError> {
        if t.fits(want) {
            return Ok(());
        }
        Err(FilterError::at_span(t.span, |at| {
            format!(
                "type mismatch{at}: {context} needs {}, but {} is not{}",
                want.noun(),
                t.what,
                hint(t, want)
            )
        }))
    }

    fn want_numeric(&self, t: &Typed, context: &str) -> Result<(), FilterError> {
        if t.ty.numeric() || matches!(t.ty, Ty::Null | Ty::Any) {
            return Ok(());
        }
        self.want(t, Ty::Int, context)
    }

    fn comparable(&self, a: &Typed, b: &Typed) -> Result<(), FilterError> {
        let ok = match (a.ty, b.ty) {
            (Ty::Null | Ty::Any, _) | (_, Ty::Null | Ty::Any) => true,
            (x, y) if x.numeric() && y.numeric() => true,
            (Ty::Str, Ty::Str) | (Ty::Bool, Ty::Bool) | (Ty::Time, Ty::Time) => true,
            // '2025-01-01T00:00:00Z' is read as a timestamp.
            (Ty::Time, Ty::Str) => b.literal,
            (Ty::Str, Ty::Time) => a.literal,
            _ => false,
        };
        if ok {
            return Ok(());
        }
        // Point at the side that is not a column (the value that is wrong), else the right.
        let (col, other) = if b.column && !a.column {
            (b, a)
        } else {
            (a, b)
        };
        Err(FilterError::at_span(other.span, |at| {
            format!(
                "type mismatch{at}: cannot compare {} with {}{}",
                col.what,
                other.what,
                hint(other, col.ty)
            )
        }))
    }
}

fn arity(e: &Expr, name: &str, n: usize, min: usize, max: usize) -> Result<(), FilterError> {
    if (min..=max).contains(&n) {
        return Ok(());
    }
    let want = if min == max {
        format!("{min}")
    } else {
        format!("{min} to {max}")
    };
    Err(FilterError::at_span(e.span(), |at| {
        format!("{name}(){at} takes {want} arguments, not {n}")
    }))
}

/// How to fix a value `t` that should have been a `want`.
fn hint(t: &Typed, want: Ty) -> String {
    let text = match (t.ty, want) {
        (Ty::Str, x) if x.numeric() && t.literal => " — numbers are written without quotes",
        (x, Ty::Str) if x.numeric() && t.literal => " — quote the value to compare strings: '…'",
        (Ty::Int | Ty::Float, Ty::Time) | (Ty::Time, Ty::Int | Ty::Float) => {
            " — compare timestamps with a time such as '2025-01-01T00:00:00Z'"
        }
        (Ty::List, _) | (_, Ty::List) => " — test list membership with array_has(flags, 'name')",
        (Ty::Map, _) | (_, Ty::Map) => " — read one key with dst_labels['app']",
        _ => "",
    };
    text.to_string()
}

fn unsupported(e: &Expr, what: &str) -> FilterError {
    FilterError::at_span(e.span(), |at| {
        format!("{what}{at} is not supported in a filter")
    })
}

/// Levenshtein distance over bytes (column names are ASCII).
fn edit_distance(a: &str, b: &str) -> usize {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    let mut cur = vec![0; b.len() + 1];
    for i in 1..=a.len() {
        cur[0] = i;
        for j in 1..=b.len() {
            let sub = prev[j - 1] + usize::from(a[i - 1] != b[j - 1]);
            cur[j] = sub.min(prev[j] + 1).min(cur[j - 1] + 1);
        }
        std::mem::swap(&mut prev, &mut cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(super::edit_distance("stauts_code", "status_code"), 2);
        assert_eq!(super::edit_distance("", "abc"), 3);
        assert_eq!(super::edit_distance("path", "path"), 0);
    }
}
