//! Entry filters: a SQL boolean expression over the entry columns, checked and compiled
//! once to a DataFusion physical expression, then evaluated per Arrow batch (DESIGN §3).
//!
//! ```text
//! status_code >= 500 AND dst_namespace = 'prod'
//! method IN ('GET', 'POST') AND path LIKE '/api/%'
//! protocol = 'grpc' AND grpc_status <> 0
//! dst_labels['app'] = 'web' AND array_has(flags, 'response_gap')
//! ```
//!
//! [`Filter::compile`] tokenizes and parses the text with sqlparser, refuses everything
//! that is not a pure expression (statements, subqueries, aggregates, window and
//! non-deterministic functions, comments, placeholders), type-checks it against the
//! schema with errors that name the position, plans it with DataFusion (coercion and
//! simplification) and keeps the physical expression. [`Filter::evaluate`] and
//! [`Filter::filter_batch`] never plan again. See README.md for the grammar and limits.

mod check;
mod provider;

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::{Array, BooleanArray, RecordBatch, RecordBatchOptions};
use arrow_schema::{DataType, SchemaRef};
use datafusion_common::DFSchema;
use datafusion_expr::ExprSchemable;
use datafusion_expr::execution_props::ExecutionProps;
use datafusion_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion_expr::simplify::SimplifyContext;
use datafusion_optimizer::simplify_expressions::ExprSimplifier;
use datafusion_physical_expr::PhysicalExpr;
use datafusion_sql::planner::{PlannerContext, SqlToRel};
use datafusion_sql::sqlparser::dialect::GenericDialect;
use datafusion_sql::sqlparser::keywords::Keyword;
use datafusion_sql::sqlparser::parser::{Parser, ParserError};
use datafusion_sql::sqlparser::tokenizer::{Location, Span, Token, Tokenizer, Whitespace};

/// Longest filter text accepted, in bytes.
pub const MAX_FILTER_BYTES: usize = 4096;
/// Deepest nesting accepted: parentheses, brackets and sub-expressions. A chain of the
/// same `AND` or `OR` counts as one level, so long flat conjunctions are fine.
pub const MAX_DEPTH: usize = 64;
/// The parser's own recursion limit; above [`MAX_DEPTH`] so that our check, with its
/// better message, normally fires first.
const PARSER_RECURSION_LIMIT: usize = MAX_DEPTH + 16;

/// The values some string columns can take (`protocol`: http, grpc, …): comparing one
/// with anything else is refused with a suggestion, since it could never match.
pub type Domains = std::collections::HashMap<String, Vec<String>>;

/// Why a filter was refused (or, rarely, why a batch could not be evaluated).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct FilterError {
    /// What is wrong, including the position when there is one.
    pub message: String,
    /// Line and column (both from 1) of the offending part of the filter.
    pub position: Option<(usize, usize)>,
}

impl FilterError {
    fn new(message: impl Into<String>) -> FilterError {
        FilterError {
            message: message.into(),
            position: None,
        }
    }

    /// An error located at `loc`; `msg` gets " at L:C" (or "" when unknown).
    fn at(loc: Location, msg: impl FnOnce(&str) -> String) -> FilterError {
        let position = (loc.line > 0).then_some((loc.line as usize, loc.column as usize));
        let at = match position {
            Some((l, c)) => format!(" at {l}:{c}"),
            None => String::new(),
        };
        FilterError {
            message: msg(&at),
            position,
        }
    }

    fn at_span(span: Span, msg: impl FnOnce(&str) -> String) -> FilterError {
        FilterError::at(span.start, msg)
    }
}

/// A compiled filter. Cheap to share (`Arc` it) and to evaluate from several threads.
#[derive(Debug, Clone)]
pub struct Filter {
    source: String,
    schema: SchemaRef,
    /// `None`: the empty filter, which matches every entry.
    expr: Option<Compiled>,
}

/// The physical expression, planned against only the columns it reads: evaluation
/// sees a projection of the batch, so DataFusion's AND pre-selection (which filters its
/// input before evaluating the right side) copies those few columns, not all of them.
#[derive(Debug, Clone)]
struct Compiled {
    expr: Arc<dyn PhysicalExpr>,
    projection: Vec<usize>,
    projected: SchemaRef,
}

impl Filter {
    /// Parses, checks and compiles `text` against `schema`. An empty (or blank) text
    /// matches everything.
    pub fn compile(text: &str, schema: &SchemaRef) -> Result<Filter, FilterError> {
        Filter::compile_with(text, schema, &Domains::new())
    }

    /// Like [`Filter::compile`], also checking strings compared with the columns of
    /// `domains` against their known values.
    pub fn compile_with(
        text: &str,
        schema: &SchemaRef,
        domains: &Domains,
    ) -> Result<Filter, FilterError> {
        if text.len() > MAX_FILTER_BYTES {
            return Err(FilterError::new(format!(
                "the filter is {} bytes long; the limit is {MAX_FILTER_BYTES}",
                text.len()
            )));
        }
        let expr = if text.trim().is_empty() {
            None
        } else {
            Some(compile_on_big_stack(text, schema, domains)?)
        };
        Ok(Filter {
            source: text.to_string(),
            schema: Arc::clone(schema),
            expr,
        })
    }

    /// The filter text as given.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Whether this is the empty filter.
    pub fn matches_all(&self) -> bool {
        self.expr.is_none()
    }

    /// One boolean per row, without nulls: a row whose filter value is NULL (say
    /// `status_code = 200` on an entry without a status) does not match.
    pub fn evaluate(&self, batch: &RecordBatch) -> Result<BooleanArray, FilterError> {
        let Some(expr) = &self.expr else {
            return Ok(BooleanArray::from(vec![true; batch.num_rows()]));
        };
        self.check_schema(batch)?;
        let columns = expr
            .projection
            .iter()
            .map(|&i| Arc::clone(batch.column(i)))
            .collect();
        let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
        let input =
            RecordBatch::try_new_with_options(Arc::clone(&expr.projected), columns, &options)
                .map_err(|e| FilterError::new(format!("projecting the batch: {e}")))?;
        let value = expr
            .expr
            .evaluate(&input)
            .and_then(|v| v.into_array(batch.num_rows()))
            .map_err(|e| FilterError::new(format!("evaluating the filter: {e}")))?;
        let mask = value
            .as_boolean_opt()
            .ok_or_else(|| FilterError::new("the filter did not produce booleans"))?;
        Ok(if mask.null_count() > 0 {
            arrow_select::filter::prep_null_mask_filter(mask)
        } else {
            mask.clone()
        })
    }

    /// The rows of `batch` that match.
    pub fn filter_batch(&self, batch: &RecordBatch) -> Result<RecordBatch, FilterError> {
        if self.expr.is_none() {
            return Ok(batch.clone());
        }
        let mask = self.evaluate(batch)?;
        if mask.true_count() == batch.num_rows() {
            return Ok(batch.clone());
        }
        arrow_select::filter::filter_record_batch(batch, &mask)
            .map_err(|e| FilterError::new(format!("filtering the batch: {e}")))
    }

    /// The expression holds column indices, so a batch must have the schema it was
    /// compiled against.
    fn check_schema(&self, batch: &RecordBatch) -> Result<(), FilterError> {
        let schema = batch.schema_ref();
        if Arc::ptr_eq(schema, &self.schema) || schema.fields() == self.schema.fields() {
            Ok(())
        } else {
            Err(FilterError::new(
                "the batch's schema differs from the one the filter was compiled against",
            ))
        }
    }
}

/// Stack for compiling: the parser, the check and DataFusion's planner recurse over the
/// expression, with large frames in debug builds. The limits bound the depth; a thread
/// of our own makes the stack the callers' threads happen to have irrelevant. Spawning it
/// costs tens of microseconds, once per subscription.
const COMPILE_STACK_BYTES: usize = 16 << 20;

fn compile_on_big_stack(
    text: &str,
    schema: &SchemaRef,
    domains: &Domains,
) -> Result<Compiled, FilterError> {
    std::thread::scope(|s| {
        std::thread::Builder::new()
            .name("reef-filter-compile".into())
            .stack_size(COMPILE_STACK_BYTES)
            .spawn_scoped(s, || compile_expr(text, schema, domains))
            .map_err(|e| FilterError::new(format!("cannot start the compile thread: {e}")))?
            .join()
            .unwrap_or_else(|_| Err(FilterError::new("compiling the filter panicked")))
    })
}

fn compile_expr(
    text: &str,
    schema: &SchemaRef,
    domains: &Domains,
) -> Result<Compiled, FilterError> {
    let dialect = GenericDialect {};
    let tokens = Tokenizer::new(&dialect, text)
        .tokenize_with_location()
        .map_err(|e| {
            FilterError::at(e.location, |at| format!("syntax error{at}: {}", e.message))
        })?;
    scan_tokens(&tokens)?;
    let mut parser = Parser::new(&dialect)
        .with_recursion_limit(PARSER_RECURSION_LIMIT)
        .with_tokens_with_locations(tokens);
    let ast = parser.parse_expr().map_err(|e| parser_error(e, text))?;
    let next = parser.peek_token();
    if next.token != Token::EOF {
        return Err(FilterError::at(next.span.start, |at| {
            format!(
                "unexpected '{}'{at} after the end of the expression; a filter is one boolean expression",
                next.token
            )
        }));
    }

    let typed = check::Checker::new(schema, domains).check(&ast, 0)?;
    if !matches!(typed.ty, check::Ty::Bool | check::Ty::Any) {
        return Err(FilterError::at_span(typed.span, |at| {
            format!(
                "the filter must be a boolean expression{at}, but {} is not a condition",
                typed.what
            )
        }));
    }

    let df_schema = DFSchema::try_from(Arc::clone(schema)).map_err(planning_error)?;
    let provider = provider::provider();
    let planner = SqlToRel::new(provider);
    let logical = planner
        .sql_to_expr(ast, &df_schema, &mut PlannerContext::new())
        .map_err(planning_error)?;
    let df_schema = Arc::new(df_schema);
    let simplifier = ExprSimplifier::new(
        SimplifyContext::builder()
            .with_schema(Arc::clone(&df_schema))
            .build(),
    );
    let logical = simplifier
        .coerce(logical, &df_schema)
        .and_then(|e| simplifier.simplify(e))
        .map_err(planning_error)?;
    let ty = logical.get_type(&df_schema).map_err(planning_error)?;
    if ty != DataType::Boolean {
        return Err(FilterError::new(format!(
            "the filter must be a boolean expression, but it is {ty}"
        )));
    }
    let mut projection: Vec<usize> = logical
        .column_refs()
        .iter()
        .map(|c| schema.index_of(&c.name))
        .collect::<Result<_, _>>()
        .map_err(|e| FilterError::new(format!("invalid filter: {e}")))?;
    projection.sort_unstable();
    projection.dedup();
    let projected = Arc::new(
        schema
            .project(&projection)
            .map_err(|e| FilterError::new(format!("invalid filter: {e}")))?,
    );
    let projected_df = DFSchema::try_from(Arc::clone(&projected)).map_err(planning_error)?;
    let expr = datafusion_physical_expr::create_physical_expr(
        &logical,
        &projected_df,
        &ExecutionProps::new(),
        &PhysicalPlanningContext::default(),
    )
    .map_err(planning_error)?;
    Ok(Compiled {
        expr,
        projection,
        projected,
    })
}

/// Refuses comments, statement separators and nesting deeper than [`MAX_DEPTH`]
/// before the parser (which recurses on nesting) sees the tokens.
fn scan_tokens(
    tokens: &[datafusion_sql::sqlparser::tokenizer::TokenWithSpan],
) -> Result<(), FilterError> {
    let too_deep = |t: &datafusion_sql::sqlparser::tokenizer::TokenWithSpan| {
        FilterError::at(t.span.start, |at| {
            format!("the filter is nested too deeply{at}: the limit is {MAX_DEPTH} levels")
        })
    };
    let mut depth = 0usize;
    // Consecutive prefix operators (`NOT NOT …`, `- - …`) nest like parentheses.
    let mut prefix_run = 0usize;
    for t in tokens {
        let prefix = match &t.token {
            Token::Word(w) => w.keyword == Keyword::NOT,
            Token::Minus | Token::Plus | Token::Tilde | Token::ExclamationMark => true,
            _ => false,
        };
        if prefix {
            prefix_run += 1;
            if depth + prefix_run > MAX_DEPTH {
                return Err(too_deep(t));
            }
        } else if !matches!(t.token, Token::Whitespace(_)) {
            prefix_run = 0;
        }
        match &t.token {
            Token::Whitespace(
                Whitespace::SingleLineComment { .. } | Whitespace::MultiLineComment(_),
            ) => {
                return Err(FilterError::at(t.span.start, |at| {
                    format!("comments are not allowed in a filter{at}")
                }));
            }
            Token::SemiColon => {
                return Err(FilterError::at(t.span.start, |at| {
                    format!(
                        "';'{at} would end a statement; a filter is one boolean expression, not SQL statements"
                    )
                }));
            }
            Token::LParen | Token::LBracket | Token::LBrace => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(too_deep(t));
                }
            }
            Token::RParen | Token::RBracket | Token::RBrace => depth = depth.saturating_sub(1),
            Token::Placeholder(p) => {
                return Err(FilterError::at(t.span.start, |at| {
                    format!("placeholder '{p}'{at} is not supported; write the value itself")
                }));
            }
            _ => {}
        }
    }
    Ok(())
}

/// sqlparser puts the position at the end of its messages: "... at Line: 1, Column: 5".
fn parser_error(e: ParserError, text: &str) -> FilterError {
    let raw = match e {
        ParserError::RecursionLimitExceeded => {
            return FilterError::new(format!(
                "the filter is nested too deeply: the limit is {MAX_DEPTH} levels"
            ));
        }
        ParserError::TokenizerError(s) | ParserError::ParserError(s) => s,
    };
    let (msg, loc) = match raw.rfind(" at Line: ") {
        Some(i) => {
            let loc = parse_location(&raw[i + " at Line: ".len()..]);
            (raw[..i].to_string(), loc)
        }
        None => (raw, None),
    };
    let msg = msg
        .replacen("Expected: ", "expected ", 1)
        .replace(", found: ", ", found ");
    // The end of input has no position in sqlparser; it is just past the last character.
    let loc = match loc {
        Some(l) if l.line > 0 => Some(l),
        _ if msg.ends_with("found EOF") => Some(end_of(text)),
        other => other,
    };
    match loc {
        Some(loc) => FilterError::at(loc, |at| format!("syntax error{at}: {msg}")),
        None => FilterError::new(format!("syntax error: {msg}")),
    }
}

fn end_of(text: &str) -> Location {
    let line = text.lines().count().max(1);
    let last = if text.ends_with('\n') {
        ""
    } else {
        text.lines().last().unwrap_or("")
    };
    let line = if text.ends_with('\n') { line + 1 } else { line };
    Location::new(line as u64, last.chars().count() as u64 + 1)
}

fn parse_location(s: &str) -> Option<Location> {
    let (line, col) = s.split_once(", Column: ")?;
    let col: String = col.chars().take_while(char::is_ascii_digit).collect();
    Some(Location::new(line.trim().parse().ok()?, col.parse().ok()?))
}

fn planning_error(e: datafusion_common::DataFusionError) -> FilterError {
    FilterError::new(format!("invalid filter: {}", e.strip_backtrace()))
}

#[cfg(test)]
mod unit_tests {
    use super::*;
    use arrow_schema::{Field, Schema};

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("status_code", DataType::Int32, true),
            Field::new("path", DataType::Utf8, true),
        ]))
    }

    #[test]
    fn parser_positions_are_extracted() {
        let e = Filter::compile("status_code >= (", &schema()).unwrap_err();
        assert!(e.message.starts_with("syntax error at 1:"), "{e}");
        assert!(e.position.is_some());
    }

    #[test]
    fn every_allowed_function_is_registered() {
        let p = provider::provider();
        for name in check::ALLOWED_FUNCTIONS {
            assert!(p.has_function(name), "{name} missing");
        }
    }
}
