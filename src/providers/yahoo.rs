//! Yahoo Finance's chart API: `GET /v8/finance/chart/{symbol}` with
//! `period1`/`period2` (unix seconds) and `interval=1d`. The answer holds
//! parallel arrays (`timestamp`, `indicators.quote[0].open`…,
//! `indicators.adjclose[0].adjclose`), split events keyed by time stamp,
//! and `chart.error` for an unknown symbol (HTTP 404).

use chrono_tz::Tz;
use reqwest::Url;
use serde::Deserialize;
use serde_json::Value;

use super::{ApiRequest, BarsBuilder, DateRange, Provider, ProviderError, ProviderName, RawBar, number, trading_date};
use crate::candles::source::FileRead;
use crate::symbols::Symbol;

pub struct Yahoo;

#[derive(Deserialize)]
struct Answer {
    chart: Chart,
}

#[derive(Deserialize)]
struct Chart {
    result: Option<Vec<Series>>,
    error: Option<ApiError>,
}

#[derive(Deserialize)]
struct ApiError {
    code: Option<String>,
    description: Option<String>,
}

#[derive(Deserialize)]
struct Series {
    #[serde(default)]
    meta: Meta,
    #[serde(default)]
    timestamp: Vec<Value>,
    indicators: Option<Indicators>,
    events: Option<Events>,
}

#[derive(Deserialize, Default)]
struct Meta {
    #[serde(rename = "exchangeTimezoneName")]
    exchange_timezone: Option<String>,
}

#[derive(Deserialize)]
struct Indicators {
    #[serde(default)]
    quote: Vec<Quote>,
    #[serde(default)]
    adjclose: Vec<AdjClose>,
}

#[derive(Deserialize, Default)]
struct Quote {
    #[serde(default)]
    open: Vec<Value>,
    #[serde(default)]
    high: Vec<Value>,
    #[serde(default)]
    low: Vec<Value>,
    #[serde(default)]
    close: Vec<Value>,
    #[serde(default)]
    volume: Vec<Value>,
}

#[derive(Deserialize)]
struct AdjClose {
    #[serde(default)]
    adjclose: Vec<Value>,
}

#[derive(Deserialize)]
struct Events {
    #[serde(default)]
    splits: std::collections::BTreeMap<String, Split>,
}

#[derive(Deserialize)]
struct Split {
    date: i64,
    numerator: f64,
    denominator: f64,
}

impl Provider for Yahoo {
    fn name(&self) -> ProviderName {
        ProviderName::Yahoo
    }

    fn default_base(&self) -> &'static str {
        "https://query1.finance.yahoo.com"
    }

    fn request(&self, base: &Url, symbol: &Symbol, range: DateRange, _key: Option<&str>) -> ApiRequest {
        let (start, end) = range.unix_bounds();
        let mut url = base.clone();
        url.path_segments_mut()
            .expect("base URLs are checked to be http(s)")
            .pop_if_empty()
            .extend(["v8", "finance", "chart", symbol.as_str()]);
        url.query_pairs_mut()
            .append_pair("period1", &start.to_string())
            .append_pair("period2", &end.to_string())
            .append_pair("interval", "1d")
            .append_pair("events", "split")
            .append_pair("includeAdjustedClose", "true");
        ApiRequest { url, headers: vec![] }
    }

    fn parse(&self, symbol: &Symbol, timezone: Tz, body: &[u8]) -> Result<FileRead, ProviderError> {
        let answer: Answer = serde_json::from_slice(body).map_err(super::malformed)?;
        if let Some(err) = answer.chart.error {
            let text = err.description.or(err.code).unwrap_or_else(|| "error".into());
            return Err(ProviderError::UnknownSymbol(text));
        }
        let series = answer
            .chart
            .result
            .and_then(|r| r.into_iter().next())
            .ok_or(ProviderError::Empty)?;
        let timezone = series
            .meta
            .exchange_timezone
            .as_deref()
            .and_then(|z| z.parse::<Tz>().ok())
            .unwrap_or(timezone);
        let indicators = series
            .indicators
            .ok_or_else(|| ProviderError::Malformed("no indicators".into()))?;
        let quote = indicators.quote.into_iter().next().unwrap_or_default();
        let adj = indicators
            .adjclose
            .into_iter()
            .next()
            .map(|a| a.adjclose)
            .unwrap_or_default();
        let n = series.timestamp.len();
        super::check_columns(
            n,
            &[
                ("open", &quote.open),
                ("high", &quote.high),
                ("low", &quote.low),
                ("close", &quote.close),
                ("volume", &quote.volume),
            ],
        )?;
        let splits: Vec<(i64, f64)> = series
            .events
            .map(|e| {
                e.splits
                    .into_values()
                    .map(|s| (s.date, s.numerator / s.denominator))
                    .collect()
            })
            .unwrap_or_default();
        let mut bars = BarsBuilder::new(ProviderName::Yahoo, symbol);
        for i in 0..n {
            let stamp = series.timestamp[i].as_i64();
            let date = stamp.and_then(|t| trading_date(t, timezone));
            let split_coef = date.and_then(|d| {
                splits
                    .iter()
                    .find(|(t, _)| trading_date(*t, timezone) == Some(d))
                    .map(|(_, ratio)| *ratio)
            });
            bars.push(
                i,
                RawBar {
                    date,
                    open: number(&quote.open[i]),
                    high: number(&quote.high[i]),
                    low: number(&quote.low[i]),
                    close: number(&quote.close[i]),
                    adj_close: adj.get(i).and_then(number),
                    volume: number(&quote.volume[i]),
                    split_coef,
                },
            );
        }
        bars.finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::candles::quality::Rule;
    use crate::providers::testing::recorded;

    fn ny() -> Tz {
        "America/New_York".parse().unwrap()
    }

    #[test]
    fn recorded_answer_parses_with_adjusted_close_and_the_split() {
        let symbol = Symbol::parse("AAPL").unwrap();
        let read = Yahoo.parse(&symbol, ny(), &recorded("yahoo_AAPL.json")).unwrap();
        assert!(read.offences.is_empty(), "{:?}", read.offences);
        let first = &read.rows[0].candle;
        // The fixture CSV's first row of the recorded range.
        assert_eq!(first.date.to_string(), "2020-08-03");
        assert_eq!(
            (first.open, first.high, first.close, first.volume),
            (432.8, 446.5457, 435.75, 77037847)
        );
        assert_eq!(first.adj_close, Some(108.386928252));
        let split = read.rows.iter().find(|r| r.candle.split_coef.is_some()).unwrap();
        assert_eq!(split.candle.date.to_string(), "2020-08-31");
        assert_eq!(split.candle.split_coef, Some(4.0));
    }

    #[test]
    fn unknown_symbol_null_bars_and_garbage() {
        let symbol = Symbol::parse("NOPE").unwrap();
        let unknown = br#"{"chart":{"result":null,"error":{"code":"Not Found","description":"No data found, symbol may be delisted"}}}"#;
        assert_eq!(
            Yahoo.parse(&symbol, ny(), unknown).unwrap_err(),
            ProviderError::UnknownSymbol("No data found, symbol may be delisted".into())
        );
        let nulls = br#"{"chart":{"result":[{"meta":{},"timestamp":[1598880600,1598967000],
            "indicators":{"quote":[{"open":[10,null],"high":[11,12],"low":[9,10],"close":[10.5,11],"volume":[100,200]}]}}],"error":null}}"#;
        let read = Yahoo.parse(&symbol, ny(), nulls).unwrap();
        assert_eq!(read.rows.len(), 1);
        assert_eq!(read.offences[0].rule, Rule::MissingField);
        assert_eq!(read.offences[0].date, "2020-09-01");
        assert!(matches!(
            Yahoo.parse(&symbol, ny(), b"{\"chart\": 3"),
            Err(ProviderError::Malformed(_))
        ));
        let empty = br#"{"chart":{"result":[{"meta":{},"timestamp":[],"indicators":{"quote":[{}]}}],"error":null}}"#;
        assert_eq!(Yahoo.parse(&symbol, ny(), empty).unwrap_err(), ProviderError::Empty);
    }

    #[test]
    fn request_names_the_symbol_in_the_path_and_the_range_in_unix_seconds() {
        let base = Url::parse("http://127.0.0.1:9/prefix/").unwrap();
        let range = DateRange {
            from: "2020-08-31".parse().unwrap(),
            to: "2020-09-04".parse().unwrap(),
        };
        let req = Yahoo.request(&base, &Symbol::parse("M&M.NS").unwrap(), range, None);
        assert_eq!(req.url.path(), "/prefix/v8/finance/chart/M&M.NS");
        let query = req.url.query().unwrap();
        assert!(query.contains("period1=1598745600&period2=1599350400"), "{query}");
    }
}
