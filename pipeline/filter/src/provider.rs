//! What the SQL planner may resolve: no tables, no variables, no aggregate or window
//! functions, and only the scalar functions in [`ALLOWED_FUNCTIONS`].

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use arrow_schema::DataType;
use datafusion_common::config::ConfigOptions;
use datafusion_common::{Result, TableReference, plan_err};
use datafusion_expr::planner::{ContextProvider, ExprPlanner};
use datafusion_expr::{AggregateUDF, HigherOrderUDF, ScalarUDF, TableSource, WindowUDF};

use crate::check::ALLOWED_FUNCTIONS;

pub(crate) struct Provider {
    options: ConfigOptions,
    functions: HashMap<&'static str, Arc<ScalarUDF>>,
    planners: Vec<Arc<dyn ExprPlanner>>,
}

impl Provider {
    #[cfg(test)]
    pub(crate) fn has_function(&self, name: &str) -> bool {
        self.functions.contains_key(name)
    }
}

/// Built once per process: collecting DataFusion's functions is not free.
pub(crate) fn provider() -> &'static Provider {
    static PROVIDER: OnceLock<Provider> = OnceLock::new();
    PROVIDER.get_or_init(|| {
        let mut functions = HashMap::new();
        let all = datafusion_functions::all_default_functions()
            .into_iter()
            .chain(datafusion_functions_nested::all_default_nested_functions());
        for udf in all {
            let names =
                std::iter::once(udf.name().to_string()).chain(udf.aliases().iter().cloned());
            for n in names {
                if let Some(allowed) = ALLOWED_FUNCTIONS.iter().find(|a| **a == n) {
                    functions.insert(*allowed, Arc::clone(&udf));
                }
            }
        }
        Provider {
            options: ConfigOptions::default(),
            functions,
            planners: vec![
                Arc::new(datafusion_functions::core::planner::CoreFunctionPlanner::default()),
                Arc::new(datafusion_functions_nested::planner::NestedFunctionPlanner),
                Arc::new(datafusion_functions_nested::planner::FieldAccessPlanner),
            ],
        }
    })
}

impl ContextProvider for Provider {
    fn get_table_source(&self, name: TableReference) -> Result<Arc<dyn TableSource>> {
        plan_err!("a filter cannot read tables ({name})")
    }

    fn get_expr_planners(&self) -> &[Arc<dyn ExprPlanner>] {
        &self.planners
    }

    fn get_function_meta(&self, name: &str) -> Option<Arc<ScalarUDF>> {
        self.functions.get(name).cloned()
    }

    fn get_higher_order_meta(&self, _name: &str) -> Option<Arc<HigherOrderUDF>> {
        None
    }

    fn get_aggregate_meta(&self, _name: &str) -> Option<Arc<AggregateUDF>> {
        None
    }

    fn get_window_meta(&self, _name: &str) -> Option<Arc<WindowUDF>> {
        None
    }

    fn get_variable_type(&self, _variable_names: &[String]) -> Option<DataType> {
        None
    }

    fn options(&self) -> &ConfigOptions {
        &self.options
    }

    fn udf_names(&self) -> Vec<String> {
        self.functions.keys().map(|k| k.to_string()).collect()
    }

    fn higher_order_function_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udaf_names(&self) -> Vec<String> {
        Vec::new()
    }

    fn udwf_names(&self) -> Vec<String> {
        Vec::new()
    }
}
