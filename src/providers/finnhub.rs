//! Finnhub's `GET /api/v1/stock/candle?symbol=…&resolution=D&from=…&to=…`:
//! parallel arrays `t,o,h,l,c,v` and a status `s` (`ok` or `no_data`).
//! Daily bars are stamped at midnight UTC of the trading date (older
//! answers: at the session's open), see [`super::trading_date`]. The key
//! goes in the `X-Finnhub-Token` header.

use chrono_tz::Tz;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiRequest, BarsBuilder, DateRange, Provider, ProviderError, ProviderName, RawBar, number, trading_date};
use crate::candles::source::FileRead;
use crate::symbols::Symbol;

pub struct Finnhub;

#[derive(Deserialize)]
struct Answer {
    s: Option<String>,
    error: Option<String>,
    #[serde(default)]
    t: Vec<Value>,
    #[serde(default)]
    o: Vec<Value>,
    #[serde(default)]
    h: Vec<Value>,
    #[serde(default)]
    l: Vec<Value>,
    #[serde(default)]
    c: Vec<Value>,
    #[serde(default)]
    v: Vec<Value>,
}

impl Provider for Finnhub {
    fn name(&self) -> ProviderName {
        ProviderName::Finnhub
    }

    fn default_base(&self) -> &'static str {
        "https://finnhub.io"
    }

    fn request(&self, base: &Url, symbol: &Symbol, range: DateRange, key: Option<&str>) -> ApiRequest {
        let (start, end) = range.unix_bounds();
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("base URLs are checked to be http(s)")
            .pop_if_empty()
            .extend(["api", "v1", "stock", "candle"]);
        url.query_pairs_mut()
            .append_pair("symbol", symbol.as_str())
            .append_pair("resolution", "D")
            .append_pair("from", &start.to_string())
            .append_pair("to", &end.to_string());
        let headers = key
            .map(|k| vec![("X-Finnhub-Token", k.to_string())])
            .unwrap_or_default();
        ApiRequest { url, headers }
    }

    fn parse(&self, symbol: &Symbol, timezone: Tz, body: &[u8]) -> Result<FileRead, ProviderError> {
        let answer: Answer = serde_json::from_slice(body).map_err(super::malformed)?;
        if let Some(error) = answer.error {
            return Err(ProviderError::Api(error));
        }
        match answer.s.as_deref() {
            Some("ok") => {}
            Some("no_data") => return Err(ProviderError::Empty),
            other => return Err(ProviderError::Malformed(format!("status {other:?}"))),
        }
        let n = answer.t.len();
        super::check_columns(
            n,
            &[
                ("o", &answer.o),
                ("h", &answer.h),
                ("l", &answer.l),
                ("c", &answer.c),
                ("v", &answer.v),
            ],
        )?;
        let mut bars = BarsBuilder::new(ProviderName::Finnhub, symbol);
        for i in 0..n {
            bars.push(
                i,
                RawBar {
                    date: answer.t[i].as_i64().and_then(|t| trading_date(t, timezone)),
                    open: number(&answer.o[i]),
                    high: number(&answer.h[i]),
                    low: number(&answer.l[i]),
                    close: number(&answer.c[i]),
                    adj_close: None,
                    volume: number(&answer.v[i]),
                    split_coef: None,
                },
            );
        }
        bars.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::testing::recorded;

    fn zone() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn recorded_answer_parses_on_the_trading_dates() {
        let symbol = Symbol::parse("KO").unwrap();
        let read = Finnhub.parse(&symbol, zone(), &recorded("finnhub_KO.json")).unwrap();
        assert!(read.offences.is_empty());
        assert_eq!(read.rows[0].candle.date.to_string(), "2020-08-03");
        assert!(
            read.rows
                .iter()
                .all(|r| chrono::Datelike::weekday(&r.candle.date).number_from_monday() <= 5)
        );
    }

    #[test]
    fn no_data_errors_and_ragged_arrays() {
        let symbol = Symbol::parse("KO").unwrap();
        let parse = |body: &str| Finnhub.parse(&symbol, zone(), body.as_bytes()).unwrap_err();
        assert_eq!(parse(r#"{"s":"no_data"}"#), ProviderError::Empty);
        assert!(matches!(
            parse(r#"{"error":"You don't have access to this resource."}"#),
            ProviderError::Api(_)
        ));
        assert!(matches!(
            parse(r#"{"s":"ok","t":[1598832000],"o":[1],"h":[1],"l":[1],"c":[]," v":[1]}"#),
            ProviderError::Malformed(_)
        ));
    }
}
