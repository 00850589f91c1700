//! TwelveData's `GET /time_series?symbol=…&interval=1day&start_date=…&end_date=…`.
//! Values come as strings, newest first unless `order=ASC`; errors come as
//! HTTP 200 with `"status": "error"` and a `code` (400/404: unknown symbol,
//! 429: too many requests). Indian listings are `symbol=INFY&exchange=NSE`.
//! The key goes in the `Authorization: apikey …` header, never the URL.

use chrono::NaiveDate;
use chrono_tz::Tz;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiRequest, BarsBuilder, DateRange, Provider, ProviderError, ProviderName, RawBar, number};
use crate::candles::source::FileRead;
use crate::symbols::Symbol;

pub struct TwelveData;

#[derive(Deserialize)]
struct Answer {
    status: Option<String>,
    code: Option<i64>,
    message: Option<String>,
    values: Option<Vec<Bar>>,
}

#[derive(Deserialize)]
struct Bar {
    datetime: Option<String>,
    open: Option<Value>,
    high: Option<Value>,
    low: Option<Value>,
    close: Option<Value>,
    volume: Option<Value>,
}

/// TwelveData's symbol and exchange for a Yahoo-style symbol.
fn ticker(symbol: &Symbol) -> (&str, Option<&'static str>) {
    let text = symbol.as_str();
    match text.rsplit_once('.') {
        Some((base, "NS")) => (base, Some("NSE")),
        Some((base, "BO")) => (base, Some("BSE")),
        Some((base, "PS")) => (base, Some("PSE")),
        _ => (text, None),
    }
}

impl Provider for TwelveData {
    fn name(&self) -> ProviderName {
        ProviderName::TwelveData
    }

    fn default_base(&self) -> &'static str {
        "https://api.twelvedata.com"
    }

    fn request(&self, base: &Url, symbol: &Symbol, range: DateRange, key: Option<&str>) -> ApiRequest {
        let (ticker, exchange) = ticker(symbol);
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("base URLs are checked to be http(s)")
            .pop_if_empty()
            .push("time_series");
        {
            let mut query = url.query_pairs_mut();
            query
                .append_pair("symbol", ticker)
                .append_pair("interval", "1day")
                .append_pair("start_date", &range.from.to_string())
                .append_pair("end_date", &range.to.to_string())
                .append_pair("order", "ASC")
                .append_pair("outputsize", "5000");
            if let Some(exchange) = exchange {
                query.append_pair("exchange", exchange);
            }
        }
        let headers = key
            .map(|k| vec![("Authorization", format!("apikey {k}"))])
            .unwrap_or_default();
        ApiRequest { url, headers }
    }

    fn parse(&self, symbol: &Symbol, _timezone: Tz, body: &[u8]) -> Result<FileRead, ProviderError> {
        let answer: Answer = serde_json::from_slice(body).map_err(super::malformed)?;
        if answer.status.as_deref() == Some("error") {
            let message = answer.message.unwrap_or_else(|| "error".into());
            return Err(match answer.code {
                Some(429) => ProviderError::RateLimited(message),
                Some(400 | 404) => ProviderError::UnknownSymbol(message),
                _ => ProviderError::Api(message),
            });
        }
        let values = answer.values.ok_or(ProviderError::Empty)?;
        let mut bars = BarsBuilder::new(ProviderName::TwelveData, symbol);
        for (i, bar) in values.iter().enumerate() {
            let field = |v: &Option<Value>| v.as_ref().and_then(number);
            bars.push(
                i,
                RawBar {
                    // Daily bars carry the exchange's date ("2021-09-01");
                    // a time part would follow a space.
                    date: bar
                        .datetime
                        .as_deref()
                        .and_then(|d| NaiveDate::parse_from_str(d.get(..10)?, "%Y-%m-%d").ok()),
                    open: field(&bar.open),
                    high: field(&bar.high),
                    low: field(&bar.low),
                    close: field(&bar.close),
                    adj_close: None,
                    volume: field(&bar.volume),
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
    fn recorded_answer_parses() {
        let symbol = Symbol::parse("MSFT").unwrap();
        let read = TwelveData
            .parse(&symbol, zone(), &recorded("twelvedata_MSFT.json"))
            .unwrap();
        assert!(read.offences.is_empty());
        let first = &read.rows[0].candle;
        assert_eq!(first.date.to_string(), "2020-08-03");
        assert_eq!(first.adj_close, None);
        assert!(read.rows.windows(2).all(|w| w[0].candle.date < w[1].candle.date));
    }

    #[test]
    fn errors_in_the_body_are_told_apart() {
        let symbol = Symbol::parse("NOPE").unwrap();
        let parse = |body: &str| TwelveData.parse(&symbol, zone(), body.as_bytes()).unwrap_err();
        assert!(matches!(
            parse(r#"{"code":400,"message":"**symbol** not found: NOPE","status":"error"}"#),
            ProviderError::UnknownSymbol(_)
        ));
        assert!(matches!(
            parse(r#"{"code":429,"message":"You have run out of API credits","status":"error"}"#),
            ProviderError::RateLimited(_)
        ));
        assert_eq!(parse(r#"{"meta":{},"status":"ok"}"#), ProviderError::Empty);
        assert!(matches!(parse("<html>"), ProviderError::Malformed(_)));
    }

    #[test]
    fn indian_symbols_name_their_exchange_and_the_key_stays_out_of_the_url() {
        let base = Url::parse("https://api.twelvedata.com").unwrap();
        let range = DateRange {
            from: "2024-01-01".parse().unwrap(),
            to: "2024-01-31".parse().unwrap(),
        };
        let req = TwelveData.request(&base, &Symbol::parse("INFY.NS").unwrap(), range, Some("s3cret"));
        let url = req.url.as_str();
        assert!(url.contains("symbol=INFY&") && url.contains("exchange=NSE"), "{url}");
        assert!(!url.contains("s3cret"));
        assert_eq!(req.headers, vec![("Authorization", "apikey s3cret".to_string())]);
    }
}
