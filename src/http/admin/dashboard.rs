//! The dashboard: subscribers by status and by list, new subscribers per day over the
//! last 30 days as a server-rendered SVG bar chart, and the last digest runs.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use chrono::{DateTime, Duration, NaiveDate, NaiveTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde_json::{Value, json};

use super::super::{ApiError, AppState, RouteTable};
use super::digests::{RECENT_RUNS, run_row};
use super::{Admin, render};

pub(super) fn routes(table: RouteTable) -> RouteTable {
    table.route("/admin", get(dashboard))
}

const CHART_DAYS: i64 = 30;
/// Chart geometry in SVG user units: one column per day, bars up to this tall.
const COLUMN_WIDTH: i64 = 20;
const BAR_WIDTH: i64 = 16;
const BAR_MAX_HEIGHT: i64 = 100;

/// When `date` starts in `tz`, as a UTC instant.
fn day_start(tz: Tz, date: NaiveDate) -> DateTime<Utc> {
    let midnight = date.and_time(NaiveTime::MIN);
    tz.from_local_datetime(&midnight).earliest().map_or_else(|| midnight.and_utc(), |d| d.with_timezone(&Utc))
}

/// One bar per day, oldest first, scaled to the busiest day.
fn growth_bars(days: &[(NaiveDate, i64)]) -> Vec<Value> {
    let busiest = days.iter().map(|(_, n)| *n).max().unwrap_or(0).max(1);
    days.iter()
        .enumerate()
        .map(|(i, (date, count))| {
            let height = if *count > 0 { (count * BAR_MAX_HEIGHT / busiest).max(2) } else { 0 };
            json!({
                "date": date.format("%Y-%m-%d").to_string(),
                "day": date.format("%d/%m").to_string(),
                "count": count,
                "x": i as i64 * COLUMN_WIDTH + (COLUMN_WIDTH - BAR_WIDTH) / 2,
                "y": BAR_MAX_HEIGHT - height,
                "width": BAR_WIDTH,
                "height": height,
            })
        })
        .collect()
}

async fn dashboard(State(state): State<AppState>, admin: Admin) -> Result<Response, ApiError> {
    let statuses = state.store.subscriber_counts().await?;
    let lists = state.store.list_counts().await?;
    let tz = state.config.timezone;
    let today = Utc::now().with_timezone(&tz).date_naive();
    let mut days = Vec::with_capacity(CHART_DAYS as usize);
    for back in (0..CHART_DAYS).rev() {
        let date = today - Duration::days(back);
        let count = state
            .store
            .subscribers_created_between(day_start(tz, date), day_start(tz, date + Duration::days(1)))
            .await?;
        days.push((date, count));
    }
    // Each run's time in its own list's time zone.
    let zones: HashMap<String, Tz> =
        state.store.lists().await?.into_iter().filter_map(|l| Some((l.slug, l.timezone.parse().ok()?))).collect();
    let runs: Vec<Value> = state
        .store
        .runs(None, RECENT_RUNS)
        .await?
        .iter()
        .map(|run| run_row(run, zones.get(&run.list).copied().unwrap_or(tz)))
        .collect();
    let total: i64 = statuses.iter().map(|s| s.count).sum();
    let new_in_period: i64 = days.iter().map(|(_, n)| n).sum();
    let context = json!({
        "nav": "dashboard",
        "total": total,
        "statuses": statuses,
        "lists": lists,
        "runs": runs,
        "chart": {
            "bars": growth_bars(&days),
            "width": CHART_DAYS * COLUMN_WIDTH,
            "height": BAR_MAX_HEIGHT,
            "new": new_in_period,
            "first": days.first().map(|(d, _)| d.format("%d/%m").to_string()),
            "last": days.last().map(|(d, _)| d.format("%d/%m").to_string()),
        },
    });
    Ok(render(&state, &admin, "web/admin/dashboard.html", StatusCode::OK, context))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_busiest_day() {
        let d = |n| NaiveDate::from_ymd_opt(2026, 11, n).unwrap();
        let bars = growth_bars(&[(d(1), 0), (d(2), 10), (d(3), 5), (d(4), 1000)]);
        assert_eq!(bars[0]["height"], 0);
        assert_eq!(bars[3]["height"], BAR_MAX_HEIGHT);
        assert_eq!(bars[3]["y"], 0);
        assert_eq!(bars[1]["height"], 2, "a day with subscribers always shows");
        assert_eq!(bars[2]["x"], 2 * COLUMN_WIDTH + 2);
    }

    #[test]
    fn days_start_at_local_midnight() {
        let start = day_start(chrono_tz::Asia::Ho_Chi_Minh, NaiveDate::from_ymd_opt(2026, 11, 25).unwrap());
        assert_eq!(start.to_rfc3339(), "2026-11-24T17:00:00+00:00");
    }
}
