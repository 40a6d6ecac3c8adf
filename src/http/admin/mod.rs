//! The admin web UI at /admin: login, dashboard, lists, subscribers, import and export,
//! API tokens and the audit log.

use super::RouteTable;

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table
}
