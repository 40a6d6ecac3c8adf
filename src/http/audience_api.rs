//! The admin REST API for lists and subscribers (bearer token), documented in
//! api/openapi.json.

use super::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
}
