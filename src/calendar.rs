//! Exchange calendars: time zone, session close and holidays per exchange,
//! so that "today", "the latest closed session" and "how many sessions
//! behind" are the exchange's, not the server's.
//!
//! The shipped lists (`calendars/*.toml`, compiled in) cover the years the
//! data covers; `[calendar.exchanges.NAME]` in the config file adds
//! holidays and special sessions, overrides the close, or defines a new
//! exchange.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Datelike, NaiveDate, NaiveTime, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use crate::error::UsageError;
use crate::symbols::Symbol;

/// One exchange's trading days and session close.
#[derive(Debug, Clone)]
pub struct ExchangeCalendar {
    pub name: String,
    pub timezone: Tz,
    /// Regular close, exchange local time.
    pub close: NaiveTime,
    holidays: BTreeSet<NaiveDate>,
    /// Weekend days with a session (NSE's Muhurat and special Saturdays).
    special_sessions: BTreeSet<NaiveDate>,
}

impl ExchangeCalendar {
    pub fn is_session(&self, date: NaiveDate) -> bool {
        if self.special_sessions.contains(&date) {
            return true;
        }
        date.weekday().number_from_monday() <= 5 && !self.holidays.contains(&date)
    }

    /// The last session strictly before `date`.
    pub fn previous_session(&self, date: NaiveDate) -> NaiveDate {
        let mut d = date;
        loop {
            d = d.pred_opt().expect("dates stay far from chrono's limits");
            if self.is_session(d) {
                return d;
            }
        }
    }

    /// The exchange's calendar date at `now`.
    pub fn local_date(&self, now: DateTime<Utc>) -> NaiveDate {
        now.with_timezone(&self.timezone).date_naive()
    }

    /// The latest session whose close has passed at `now`, in the
    /// exchange's own time zone.
    pub fn latest_closed_session(&self, now: DateTime<Utc>) -> NaiveDate {
        let local = now.with_timezone(&self.timezone);
        let today = local.date_naive();
        if self.is_session(today) && local.time() >= self.close {
            today
        } else {
            self.previous_session(today)
        }
    }

    /// Sessions after `from` up to and including `to` (0 when `to <= from`).
    pub fn sessions_between(&self, from: NaiveDate, to: NaiveDate) -> i64 {
        from.iter_days()
            .skip(1)
            .take_while(|d| *d <= to)
            .filter(|d| self.is_session(*d))
            .count() as i64
    }
}

/// `[calendar]` in the config file.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CalendarConfig {
    /// Exchange of a watchlist, by name (`nifty = "NSE"`); without an
    /// entry, the exchange its symbols' suffixes name.
    pub watchlists: BTreeMap<String, String>,
    pub exchanges: BTreeMap<String, ExchangeConfig>,
}

/// One exchange in the config file, or in a shipped `calendars/*.toml`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExchangeConfig {
    /// IANA name, e.g. `America/New_York` (required for a new exchange).
    pub timezone: Option<String>,
    /// Session close, `HH:MM` local time.
    pub close: Option<String>,
    /// Full-day closures on weekdays (added to the shipped list).
    pub holidays: Vec<NaiveDate>,
    /// Weekend days that had a session (added to the shipped list).
    pub special_sessions: Vec<NaiveDate>,
}

/// The shipped calendars: exchange name and its file. BSE keeps NSE's
/// trading days; the Philippine Stock Exchange ships without holidays.
const SHIPPED: &[(&str, &str)] = &[
    ("US", include_str!("../calendars/us.toml")),
    ("NSE", include_str!("../calendars/nse.toml")),
    ("BSE", include_str!("../calendars/nse.toml")),
    ("PSE", "timezone = \"Asia/Manila\"\nclose = \"15:00\"\n"),
];

/// Every known exchange's calendar.
#[derive(Debug, Clone)]
pub struct Calendars {
    by_exchange: BTreeMap<String, ExchangeCalendar>,
    watchlists: BTreeMap<String, String>,
}

impl Calendars {
    /// The shipped calendars merged with the config file's additions.
    pub fn new(config: &CalendarConfig) -> Result<Calendars, UsageError> {
        let mut merged: BTreeMap<String, ExchangeConfig> = BTreeMap::new();
        for (name, text) in SHIPPED {
            let shipped: ExchangeConfig = toml::from_str(text).expect("shipped calendars parse");
            merged.insert(name.to_string(), shipped);
        }
        for (name, extra) in &config.exchanges {
            let entry = merged.entry(name.clone()).or_default();
            if extra.timezone.is_some() {
                entry.timezone = extra.timezone.clone();
            }
            if extra.close.is_some() {
                entry.close = extra.close.clone();
            }
            entry.holidays.extend(&extra.holidays);
            entry.special_sessions.extend(&extra.special_sessions);
        }
        let by_exchange = merged
            .into_iter()
            .map(|(name, cfg)| Ok((name.clone(), build(&name, cfg)?)))
            .collect::<Result<_, UsageError>>()?;
        let calendars = Calendars {
            by_exchange,
            watchlists: config.watchlists.clone(),
        };
        for (watchlist, exchange) in &calendars.watchlists {
            calendars
                .exchange(exchange)
                .map_err(|_| invalid(format!("watchlist {watchlist}: unknown exchange {exchange:?}")))?;
        }
        Ok(calendars)
    }

    pub fn exchange(&self, name: &str) -> Result<&ExchangeCalendar, UsageError> {
        self.by_exchange.get(name).ok_or_else(|| {
            invalid(format!(
                "no calendar for exchange {name:?}: add [calendar.exchanges.{name}]"
            ))
        })
    }

    /// The calendar of a symbol's listing (from its suffix).
    pub fn for_symbol(&self, symbol: &Symbol) -> &ExchangeCalendar {
        self.exchange(symbol.listing().exchange)
            .expect("every listing has a shipped calendar")
    }

    /// The calendar a watchlist runs on: the config's entry for it, else
    /// the exchange most of its symbols are listed on (US when it has none).
    pub fn for_watchlist(&self, watchlist: &str, symbols: &[Symbol]) -> &ExchangeCalendar {
        if let Some(exchange) = self.watchlists.get(watchlist) {
            return &self.by_exchange[exchange];
        }
        let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
        for symbol in symbols {
            *counts.entry(symbol.listing().exchange).or_default() += 1;
        }
        let exchange = counts
            .into_iter()
            .max_by_key(|(_, n)| *n)
            .map(|(name, _)| name)
            .unwrap_or("US");
        self.exchange(exchange).expect("every listing has a shipped calendar")
    }
}

fn invalid(message: String) -> UsageError {
    UsageError::InvalidSetting {
        name: "calendar",
        message,
    }
}

fn build(name: &str, cfg: ExchangeConfig) -> Result<ExchangeCalendar, UsageError> {
    let zone = cfg
        .timezone
        .ok_or_else(|| invalid(format!("exchange {name}: timezone is required")))?;
    let timezone: Tz = zone
        .parse()
        .map_err(|_| invalid(format!("exchange {name}: unknown time zone {zone:?}")))?;
    let close_text = cfg.close.unwrap_or_else(|| "16:00".to_string());
    let close = NaiveTime::parse_from_str(&close_text, "%H:%M")
        .map_err(|_| invalid(format!("exchange {name}: close {close_text:?} is not HH:MM")))?;
    Ok(ExchangeCalendar {
        name: name.to_string(),
        timezone,
        close,
        holidays: cfg.holidays.into_iter().collect(),
        special_sessions: cfg.special_sessions.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> NaiveDate {
        text.parse().unwrap()
    }

    fn utc(text: &str) -> DateTime<Utc> {
        text.parse().unwrap()
    }

    fn calendars() -> Calendars {
        Calendars::new(&CalendarConfig::default()).unwrap()
    }

    #[test]
    fn one_instant_is_after_the_close_in_india_and_before_it_in_new_york() {
        let c = calendars();
        let (us, nse) = (c.exchange("US").unwrap(), c.exchange("NSE").unwrap());
        // 10:15 UTC on Wed 2024-03-06 is 15:45 IST (after NSE's 15:30 close)
        // and 05:15 EST (the US session of that day has not even opened).
        let instant = utc("2024-03-06T10:15:00Z");
        assert_eq!(nse.latest_closed_session(instant), d("2024-03-06"));
        assert_eq!(us.latest_closed_session(instant), d("2024-03-05"));
        // 20:45 UTC the same day is 15:45 EST (before the 16:00 close) and
        // 02:15 IST on the 7th (NSE's 6th has closed, its 7th has not).
        let instant = utc("2024-03-06T20:45:00Z");
        assert_eq!(us.latest_closed_session(instant), d("2024-03-05"));
        assert_eq!(nse.latest_closed_session(instant), d("2024-03-06"));
        assert_eq!(us.latest_closed_session(utc("2024-03-06T21:00:00Z")), d("2024-03-06"));
    }

    #[test]
    fn holidays_weekends_and_friday_evenings() {
        let us = calendars().exchange("US").unwrap().clone();
        // Thanksgiving 2020 (Thu 26 Nov): Friday morning's latest session is Wednesday.
        assert!(!us.is_session(d("2020-11-26")));
        assert_eq!(us.latest_closed_session(utc("2020-11-27T13:00:00Z")), d("2020-11-25"));
        // Friday 18:00 EDT: Friday itself; all weekend long, still Friday.
        assert_eq!(us.latest_closed_session(utc("2024-06-07T22:00:00Z")), d("2024-06-07"));
        assert_eq!(us.latest_closed_session(utc("2024-06-09T23:59:00Z")), d("2024-06-07"));
        // Juneteenth is a holiday from 2022, observed on Monday 2022-06-20.
        assert!(us.is_session(d("2021-06-18")));
        assert!(!us.is_session(d("2022-06-20")));
        assert_eq!(us.sessions_between(d("2022-06-17"), d("2022-06-21")), 1);
        assert_eq!(us.sessions_between(d("2022-06-17"), d("2022-06-17")), 0);
    }

    #[test]
    fn the_close_follows_daylight_saving_time() {
        let us = calendars().exchange("US").unwrap().clone();
        // US DST began Sun 2024-03-10: 16:00 EDT on Monday is 20:00 UTC,
        // 16:00 EST on Friday was 21:00 UTC.
        assert_eq!(us.latest_closed_session(utc("2024-03-11T20:00:00Z")), d("2024-03-11"));
        assert_eq!(us.latest_closed_session(utc("2024-03-08T20:30:00Z")), d("2024-03-07"));
        assert_eq!(us.latest_closed_session(utc("2024-03-08T21:00:00Z")), d("2024-03-08"));
        // DST ended Sun 2024-11-03: 20:30 UTC on Monday is 15:30 EST, still open.
        assert_eq!(us.latest_closed_session(utc("2024-11-04T20:30:00Z")), d("2024-11-01"));
        assert_eq!(us.latest_closed_session(utc("2024-11-04T21:00:00Z")), d("2024-11-04"));
        // On the switch day itself (a Sunday) the latest session is Friday.
        assert_eq!(us.latest_closed_session(utc("2024-03-10T12:00:00Z")), d("2024-03-08"));
        // India keeps no DST: 10:00 UTC is 15:30 IST all year.
        let nse = calendars().exchange("NSE").unwrap().clone();
        assert_eq!(nse.latest_closed_session(utc("2024-03-11T10:00:00Z")), d("2024-03-11"));
        assert_eq!(nse.latest_closed_session(utc("2024-11-04T09:59:00Z")), d("2024-11-01"));
    }

    /// Weekdays without a bar in a fixture are exactly the shipped
    /// holidays of its years, and every date with a bar is a session.
    fn check_against_fixture(exchange: &str, file: &str) {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures")
            .join(file);
        let text = std::fs::read_to_string(path).unwrap();
        let traded: BTreeSet<NaiveDate> = text.lines().skip(1).map(|l| d(l.split(',').nth(1).unwrap())).collect();
        let calendar = calendars().exchange(exchange).unwrap().clone();
        let (first, last) = (*traded.first().unwrap(), *traded.last().unwrap());
        for day in first.iter_days().take_while(|x| *x <= last) {
            assert_eq!(calendar.is_session(day), traded.contains(&day), "{exchange} {day}");
        }
    }

    #[test]
    fn shipped_lists_match_the_fixtures_day_for_day() {
        check_against_fixture("US", "us_daily_10sym_2018_2020.csv");
        check_against_fixture("NSE", "nse_daily_5sym_2024.csv");
    }

    #[test]
    fn special_weekend_sessions_count() {
        let nse = calendars().exchange("NSE").unwrap().clone();
        assert!(nse.is_session(d("2024-01-20")), "special Saturday session");
        assert!(!nse.is_session(d("2024-01-22")), "holiday Monday");
        assert_eq!(nse.latest_closed_session(utc("2024-01-22T12:00:00Z")), d("2024-01-20"));
    }

    #[test]
    fn config_adds_holidays_and_exchanges_and_rejects_bad_ones() {
        let mut config = CalendarConfig::default();
        config.exchanges.insert(
            "US".into(),
            ExchangeConfig {
                holidays: vec![d("2030-01-02")],
                ..Default::default()
            },
        );
        config.exchanges.insert(
            "LSE".into(),
            ExchangeConfig {
                timezone: Some("Europe/London".into()),
                close: Some("16:30".into()),
                ..Default::default()
            },
        );
        config.watchlists.insert("ftse".into(), "LSE".into());
        let c = Calendars::new(&config).unwrap();
        assert!(!c.exchange("US").unwrap().is_session(d("2030-01-02")));
        assert!(
            !c.exchange("US").unwrap().is_session(d("2007-01-02")),
            "shipped list kept"
        );
        assert_eq!(c.for_watchlist("ftse", &[]).name, "LSE");
        let nse_symbols = [Symbol::parse("INFY.NS").unwrap(), Symbol::parse("TCS.NS").unwrap()];
        assert_eq!(c.for_watchlist("nifty", &nse_symbols).name, "NSE");
        assert_eq!(c.for_watchlist("empty", &[]).name, "US");

        for (zone, close) in [("Mars/Olympus", "16:00"), ("Europe/Paris", "25:00")] {
            let mut bad = CalendarConfig::default();
            bad.exchanges.insert(
                "X".into(),
                ExchangeConfig {
                    timezone: Some(zone.into()),
                    close: Some(close.into()),
                    ..Default::default()
                },
            );
            assert!(Calendars::new(&bad).is_err());
        }
        let mut unknown = CalendarConfig::default();
        unknown.watchlists.insert("w".into(), "NOPE".into());
        assert!(Calendars::new(&unknown).unwrap_err().to_string().contains("NOPE"));
    }
}
