//! `crontab.example` is checked like code: every schedule line has five
//! valid fields, every command calls a binary this package builds, with
//! flags that binary accepts.

use crate::common::bin;

/// A cron field: `*`, numbers, ranges, lists, steps within [lo, hi].
fn valid_field(field: &str, lo: u32, hi: u32) -> bool {
    field.split(',').all(|part| {
        let (range, step) = part.split_once('/').unwrap_or((part, "1"));
        let step_ok = step.parse::<u32>().is_ok_and(|s| s >= 1);
        let range_ok = range == "*"
            || match range.split_once('-') {
                Some((a, b)) => {
                    matches!((a.parse::<u32>(), b.parse::<u32>()), (Ok(a), Ok(b)) if lo <= a && a <= b && b <= hi)
                }
                None => range.parse::<u32>().is_ok_and(|v| (lo..=hi).contains(&v)),
            };
        step_ok && range_ok
    })
}

#[test]
fn crontab_example_lines_are_valid_and_call_real_binaries_with_real_flags() {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/crontab.example")).unwrap();
    let mut jobs = 0;
    let mut zones = Vec::new();
    for line in text.lines().map(str::trim) {
        if let Some(zone) = line.strip_prefix("CRON_TZ=") {
            assert!(zone.parse::<chrono_tz::Tz>().is_ok(), "unknown time zone {zone:?}");
            zones.push(zone.to_string());
            continue;
        }
        if line.is_empty() || line.starts_with('#') || line.split_whitespace().next().is_some_and(|w| w.contains('=')) {
            continue;
        }
        let fields: Vec<&str> = line.split_whitespace().collect();
        let ranges = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
        for (i, (lo, hi)) in ranges.iter().enumerate() {
            assert!(valid_field(fields[i], *lo, *hi), "field {} of {line:?}", i + 1);
        }
        // Cron ORs a restricted day-of-month with a restricted day-of-week:
        // never both (the monthly job tests the day in its command).
        assert!(
            fields[2] == "*" || fields[4] == "*",
            "day-of-month and day-of-week both set: {line:?}"
        );
        let command = fields[5..].join(" ");
        for call in command.split("&&").map(str::trim).filter(|c| c.starts_with("$BIN/")) {
            let words: Vec<&str> = call.split_whitespace().collect();
            let name = words[0].trim_start_matches("$BIN/");
            // The subcommand's help when there is one (ta-signals import|run).
            let mut help_args: Vec<&str> = words[1..]
                .iter()
                .copied()
                .take_while(|w| !w.starts_with('-'))
                .take(1)
                .collect();
            help_args.push("--help");
            let help = std::process::Command::new(bin(name)).args(&help_args).output().unwrap();
            assert!(help.status.success(), "{name} {help_args:?}");
            let help = String::from_utf8_lossy(&help.stdout);
            for flag in words.iter().filter(|w| w.starts_with("--")) {
                assert!(help.contains(flag), "{name} has no flag {flag} ({line:?})");
            }
            jobs += 1;
        }
    }
    assert_eq!(zones, ["America/New_York", "Asia/Kolkata"]);
    assert_eq!(
        jobs, 10,
        "per exchange: ta-signals fetch, score, incremental-update, monitor, bootstrap"
    );
}

#[test]
fn cron_fields_are_checked() {
    assert!(valid_field("*", 0, 59) && valid_field("1-5", 0, 7) && valid_field("*/15", 0, 59));
    assert!(valid_field("0,30", 0, 59));
    assert!(!valid_field("60", 0, 59) && !valid_field("5-1", 0, 7) && !valid_field("x", 0, 23));
}
