//! A list's digest schedule. Admins write the five-field cron form they know
//! (`0 6 * * *`, `0 7 * * Mon`) or a preset (`daily 06:00`, `weekly mon 07:00`,
//! `monthly 1 06:00`); it is kept in that five-field form and converted for the cron
//! crate, which wants a seconds field first and numbers weekdays from 1 = Sunday. The
//! weekdays are converted to names, so no numbering can be off by one.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

const WEEKDAYS: [&str; 8] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];

#[derive(Clone, Debug)]
pub struct Schedule {
    /// The five-field form, as stored and shown.
    expression: String,
    cron: cron::Schedule,
}

impl PartialEq for Schedule {
    fn eq(&self, other: &Schedule) -> bool {
        self.expression == other.expression
    }
}

impl Schedule {
    pub fn parse(input: &str) -> Result<Schedule, String> {
        if input.trim().is_empty() {
            return Err("is empty".into());
        }
        let invalid = |e: String| format!("{input:?} is not a valid schedule: {e}");
        let expression = expand_preset(input.trim()).map_err(invalid)?;
        let fields: Vec<&str> = expression.split_whitespace().collect();
        if fields.len() != 5 {
            return Err(format!(
                "{input:?} is not a schedule: use five cron fields (minute hour day month weekday, e.g. \"0 6 * * *\") or a preset (\"daily 06:00\", \"weekly mon 07:00\", \"monthly 1 06:00\")"
            ));
        }
        let weekday = convert_weekdays(fields[4]).map_err(invalid)?;
        let six = format!("0 {} {} {} {} {weekday}", fields[0], fields[1], fields[2], fields[3]);
        let cron = cron::Schedule::from_str(&six).map_err(|e| format!("{input:?} is not a valid schedule: {e}"))?;
        if cron.upcoming(Utc).next().is_none() {
            return Err(format!("{input:?} never runs"));
        }
        Ok(Schedule { expression: fields.join(" "), cron })
    }

    pub fn as_str(&self) -> &str {
        &self.expression
    }

    /// The latest run time strictly before `before`.
    pub fn runs_before(&self, before: DateTime<Utc>, tz: Tz) -> Option<DateTime<Utc>> {
        self.cron.after(&before.with_timezone(&tz)).next_back().map(|t| t.with_timezone(&Utc))
    }

    /// The next `n` run times after `after`, in the list's time zone.
    pub fn next_runs(&self, after: DateTime<Utc>, tz: Tz, n: usize) -> Vec<DateTime<Tz>> {
        self.cron.after(&after.with_timezone(&tz)).take(n).collect()
    }
}

impl fmt::Display for Schedule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.expression)
    }
}

/// `daily [HH:MM]`, `weekly [day] [HH:MM]`, `monthly [day-of-month] [HH:MM]` to five fields;
/// anything else is returned as it is.
fn expand_preset(input: &str) -> Result<String, String> {
    let words: Vec<String> = input.split_whitespace().map(str::to_ascii_lowercase).collect();
    let Some(kind) = words.first() else {
        return Err("is empty".into());
    };
    let rest = &words[1..];
    let time = |word: Option<&String>, default: (u32, u32)| -> Result<(u32, u32), String> {
        let Some(word) = word else { return Ok(default) };
        let (h, m) = word.split_once(':').unwrap_or((word, "0"));
        match (h.parse::<u32>(), m.parse::<u32>()) {
            (Ok(h), Ok(m)) if h < 24 && m < 60 => Ok((h, m)),
            _ => Err(format!("{word:?} is not a time of day like 06:00")),
        }
    };
    let (expression, extra) = match kind.as_str() {
        "daily" => {
            let (h, m) = time(rest.first(), (6, 0))?;
            (format!("{m} {h} * * *"), rest.len() > 1)
        }
        "weekly" => {
            let day = rest.first().map_or("mon", |d| d.as_str());
            if !WEEKDAYS.iter().any(|w| w.eq_ignore_ascii_case(day)) {
                return Err(format!("{day:?} is not a weekday (mon, tue, … sun)"));
            }
            let (h, m) = time(rest.get(1), (7, 0))?;
            (format!("{m} {h} * * {}{}", day[..1].to_ascii_uppercase(), &day[1..]), rest.len() > 2)
        }
        "monthly" => {
            let day = rest.first().map_or(Ok(1), |d| d.parse::<u32>());
            let day =
                day.ok().filter(|d| (1..=28).contains(d)).ok_or("the day of a monthly schedule must be 1 to 28")?;
            let (h, m) = time(rest.get(1), (6, 0))?;
            (format!("{m} {h} {day} * *"), rest.len() > 2)
        }
        _ => return Ok(input.to_owned()),
    };
    if extra {
        return Err(format!("{input:?} has extra words after the preset"));
    }
    Ok(expression)
}

/// Standard cron weekdays (0 or 7 = Sunday … 6 = Saturday, or names) to names.
fn convert_weekdays(field: &str) -> Result<String, String> {
    let name = |token: &str| -> Result<String, String> {
        match token.parse::<usize>() {
            Ok(n) if n < WEEKDAYS.len() => Ok(WEEKDAYS[n].to_owned()),
            Ok(_) => Err(format!("weekday {token} is out of range (0-7, 0 and 7 are Sunday)")),
            Err(_) => Ok(token.to_owned()),
        }
    };
    let mut parts = Vec::new();
    for part in field.split(',') {
        let (range, step) = match part.split_once('/') {
            Some((range, step)) => (range, Some(step)),
            None => (part, None),
        };
        let range = match range.split_once('-') {
            Some((a, b)) => format!("{}-{}", name(a)?, name(b)?),
            None => name(range)?,
        };
        parts.push(match step {
            Some(step) => format!("{range}/{step}"),
            None => range,
        });
    }
    Ok(parts.join(","))
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, TimeZone, Timelike, Weekday};

    use super::*;

    const HCM: Tz = chrono_tz::Asia::Ho_Chi_Minh;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn five_fields_run_in_the_list_time_zone() {
        let daily = Schedule::parse("0 6 * * *").unwrap();
        let runs = daily.next_runs(at("2026-11-25T06:30:00+07:00"), HCM, 5);
        assert_eq!(runs.len(), 5);
        assert_eq!(runs[0], HCM.with_ymd_and_hms(2026, 11, 26, 6, 0, 0).unwrap());
        assert_eq!(runs[4], HCM.with_ymd_and_hms(2026, 11, 30, 6, 0, 0).unwrap());
    }

    #[test]
    fn weekday_numbers_mean_what_admins_expect() {
        // 2026-11-25 is a Wednesday.
        let now = at("2026-11-25T12:00:00+07:00");
        for (expr, day) in [
            ("0 7 * * 1", Weekday::Mon),
            ("0 7 * * Mon", Weekday::Mon),
            ("0 7 * * 0", Weekday::Sun),
            ("0 7 * * 7", Weekday::Sun),
            ("0 7 * * 6", Weekday::Sat),
        ] {
            let run = Schedule::parse(expr).unwrap().next_runs(now, HCM, 1)[0];
            assert_eq!(run.weekday(), day, "{expr}");
            assert_eq!(run.hour(), 7);
        }
        let weekdays = Schedule::parse("30 6 * * 1-5").unwrap().next_runs(now, HCM, 5);
        let days: Vec<Weekday> = weekdays.iter().map(|d| d.weekday()).collect();
        assert_eq!(days, [Weekday::Thu, Weekday::Fri, Weekday::Mon, Weekday::Tue, Weekday::Wed]);
    }

    #[test]
    fn presets_expand_to_five_fields() {
        assert_eq!(Schedule::parse("daily").unwrap().as_str(), "0 6 * * *");
        assert_eq!(Schedule::parse("daily 18:30").unwrap().as_str(), "30 18 * * *");
        assert_eq!(Schedule::parse("weekly mon 07:00").unwrap().as_str(), "0 7 * * Mon");
        assert_eq!(Schedule::parse("monthly 1 06:00").unwrap().as_str(), "0 6 1 * *");
    }

    #[test]
    fn bad_schedules_say_why() {
        for bad in ["", "0 6 * *", "61 6 * * *", "0 6 * * 8", "daily 25:00", "weekly funday", "monthly 31", "hourly"] {
            assert!(Schedule::parse(bad).is_err(), "{bad}");
        }
    }
}
