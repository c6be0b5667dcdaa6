//! The route table, assembled from the routes each function crate declares (its `ROUTES`).
//!
//! A function crate owns its routes: the function names its own constants, so it cannot ask for
//! a route that does not exist. This module only puts them together, for the template and for
//! `koogate serve`, which refuses to start when a route of this table has no function.

use koogate_runtime::routes::Route;

/// Each function crate's routes, in the order the template lists them.
const DECLARED: &[&[Route]] = &[
    koogate_saas::ROUTES,
    koogate_saas_legacy::ROUTES,
    koogate_license::ROUTES,
    koogate_license_legacy::ROUTES,
    koogate_order_notify::ROUTES,
    koogate_kit::ROUTES,
    koogate_sso::ROUTES,
    koogate_product_api::ROUTES,
];

/// Every route koogate serves.
pub fn table() -> Vec<Route> {
    DECLARED.concat()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_method_and_path_is_routed_once() {
        let table = table();
        for (i, r) in table.iter().enumerate() {
            let same = table[i + 1..]
                .iter()
                .find(|o| o.method == r.method && o.path == r.path);
            assert!(same.is_none(), "{} {} is routed twice", r.method, r.path);
        }
    }

    #[test]
    fn each_route_is_found_by_its_own_method_and_path() {
        let table = table();
        for r in &table {
            let found = koogate_runtime::routes::matching(&table, r.method, r.path);
            assert_eq!(found, Some(r), "{} {}", r.method, r.path);
        }
    }
}
