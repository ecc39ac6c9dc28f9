//! Turns criterion's results of the `scale`, `monitor` and `throughput`
//! benches into the tables and the SVG plots of the scale section of
//! `docs/performance.md`: nothing is typed in by hand.
//!
//! ```sh
//! cargo bench -p rumpsteak-aura-benches --bench scale --bench monitor
//! cargo bench -p rumpsteak-aura-benches --bench throughput -- current_thread
//! cp -r target/criterion /tmp/run1   # and so on for each run
//! cargo run --release -p rumpsteak-aura-benches --bin scale_plots -- \
//!     docs/src/img /tmp/run1 /tmp/run2 /tmp/run3
//! ```
//!
//! The first argument is where the plots go; the others are copies of
//! `target/criterion`, one per run. Each figure is the best (lowest) of
//! the runs that have it, of criterion's middle estimate (the slope of the
//! linear fit, as `cargo bench` prints it). The tables are printed as
//! Markdown on standard output.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// One line of a plot: a name, a colour, dashed or not, and its points.
struct Series {
    name: String,
    colour: &'static str,
    dashed: bool,
    points: Vec<(f64, f64)>,
}

/// Criterion's middle estimate in ns, from one `estimates.json`.
fn estimate(file: &Path) -> Option<f64> {
    let text = std::fs::read_to_string(file).ok()?;
    let at = match text.find("\"slope\":{") {
        Some(at) => at,
        None => text.find("\"mean\":")?,
    };
    let rest = &text[at..];
    let start = rest.find("\"point_estimate\":")? + "\"point_estimate\":".len();
    let rest = &rest[start..];
    let end = rest.find([',', '}'])?;
    rest[..end].trim().parse().ok()
}

/// The best figure of `id` (a criterion directory path below the root,
/// such as `sessions_multi_thread/handler/64`) over every run.
fn best(runs: &[PathBuf], id: &str) -> Option<f64> {
    runs.iter()
        .filter_map(|run| estimate(&run.join(id).join("new/estimates.json")))
        .min_by(f64::total_cmp)
}

fn need(runs: &[PathBuf], id: &str) -> f64 {
    best(runs, id).unwrap_or_else(|| panic!("scale_plots: no result for {id} in {runs:?}"))
}

fn time(ns: f64) -> String {
    if ns >= 1_000_000.0 {
        format!("{:.2} ms", ns / 1_000_000.0)
    } else if ns >= 1_000.0 {
        format!("{:.2} µs", ns / 1_000.0)
    } else {
        format!("{ns:.1} ns")
    }
}

fn bytes(n: f64) -> String {
    match n as u64 {
        n if n >= 1 << 20 => format!("{} MiB", n >> 20),
        n if n >= 1 << 10 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// A plot with a logarithmic x axis; the y axis is logarithmic if `log_y`.
fn plot(title: &str, x_label: &str, y_label: &str, log_y: bool, series: &[Series]) -> String {
    const W: f64 = 720.0;
    const H: f64 = 420.0;
    const LEFT: f64 = 80.0;
    const RIGHT: f64 = 230.0;
    const TOP: f64 = 40.0;
    const BOTTOM: f64 = 60.0;
    let xs: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.0))
        .collect();
    let ys: Vec<f64> = series
        .iter()
        .flat_map(|s| s.points.iter().map(|p| p.1))
        .collect();
    let (x0, x1) = (
        xs.iter().copied().fold(f64::MAX, f64::min).log10(),
        xs.iter().copied().fold(f64::MIN, f64::max).log10(),
    );
    let y_max = ys.iter().copied().fold(f64::MIN, f64::max);
    let y_min = ys.iter().copied().fold(f64::MAX, f64::min);
    let (y0, y1) = if log_y {
        (y_min.log10().floor(), y_max.log10().ceil())
    } else {
        (0.0, nice_ceiling(y_max * 1.1))
    };
    let span_x = if x1 > x0 { x1 - x0 } else { 1.0 };
    let px = |x: f64| LEFT + (x.log10() - x0) / span_x * (W - LEFT - RIGHT);
    let py = |y: f64| {
        let v = if log_y { y.log10() } else { y };
        H - BOTTOM - (v - y0) / (y1 - y0) * (H - TOP - BOTTOM)
    };
    let mut svg = String::new();
    let _ = writeln!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(svg, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="22" font-size="15" text-anchor="middle">{title}</text>"#,
        (LEFT + W - RIGHT) / 2.0
    );
    // Axes.
    let (bx, by, tx) = (LEFT, H - BOTTOM, W - RIGHT);
    let _ = writeln!(
        svg,
        r#"<path d="M{bx} {TOP} V{by} H{tx}" stroke="black" fill="none"/>"#
    );
    let mut ticks: Vec<f64> = xs.clone();
    ticks.sort_by(f64::total_cmp);
    ticks.dedup();
    for x in ticks {
        let label = if x_label.starts_with("payload") {
            bytes(x)
        } else {
            format!("{x}")
        };
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{by}" x2="{0}" y2="{1}" stroke="black"/><text x="{0}" y="{2}" text-anchor="middle">{label}</text>"#,
            px(x),
            by + 5.0,
            by + 20.0
        );
    }
    let y_ticks: Vec<f64> = if log_y {
        (y0 as i32..=y1 as i32).map(|e| 10f64.powi(e)).collect()
    } else {
        (0..=5).map(|i| y1 * f64::from(i) / 5.0).collect()
    };
    for y in y_ticks {
        let _ = writeln!(
            svg,
            r##"<line x1="{bx}" y1="{0}" x2="{tx}" y2="{0}" stroke="#ddd"/><text x="{1}" y="{2}" text-anchor="end">{3}</text>"##,
            py(y),
            bx - 6.0,
            py(y) + 4.0,
            time(y)
        );
    }
    let _ = writeln!(
        svg,
        r#"<text x="{}" y="{}" text-anchor="middle">{x_label}</text>"#,
        (LEFT + W - RIGHT) / 2.0,
        H - 18.0
    );
    let _ = writeln!(
        svg,
        r#"<text x="18" y="{0}" text-anchor="middle" transform="rotate(-90 18 {0})">{y_label}</text>"#,
        (TOP + H - BOTTOM) / 2.0
    );
    // Lines and legend.
    for (n, s) in series.iter().enumerate() {
        let dash = if s.dashed {
            r#" stroke-dasharray="6 4""#
        } else {
            ""
        };
        let path: Vec<String> = s
            .points
            .iter()
            .map(|&(x, y)| format!("{:.1},{:.1}", px(x), py(y)))
            .collect();
        let _ = writeln!(
            svg,
            r#"<polyline points="{}" fill="none" stroke="{}" stroke-width="2"{dash}/>"#,
            path.join(" "),
            s.colour
        );
        for &(x, y) in &s.points {
            let _ = writeln!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{}"/>"#,
                px(x),
                py(y),
                s.colour
            );
        }
        let ly = TOP + 10.0 + 20.0 * n as f64;
        let _ = writeln!(
            svg,
            r#"<line x1="{0}" y1="{ly}" x2="{1}" y2="{ly}" stroke="{2}" stroke-width="2"{dash}/><text x="{3}" y="{4}">{5}</text>"#,
            W - RIGHT + 15.0,
            W - RIGHT + 45.0,
            s.colour,
            W - RIGHT + 52.0,
            ly + 4.0,
            s.name
        );
    }
    svg.push_str("</svg>\n");
    svg
}

/// The smallest of 1, 2 or 5 times a power of ten at or above `v`.
fn nice_ceiling(v: f64) -> f64 {
    let p = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|&c| c >= v)
        .unwrap_or(10.0 * p)
}

const RAW: &str = "#777777";
const CHANNEL: &str = "#3a7bd5";
const HANDLER: &str = "#d64541";

fn line(name: &str, colour: &'static str, dashed: bool, points: Vec<(f64, f64)>) -> Series {
    Series {
        name: name.to_owned(),
        colour,
        dashed,
        points,
    }
}

fn write(out: &Path, name: &str, svg: &str) {
    let path = out.join(name);
    if let Err(e) = std::fs::write(&path, svg) {
        panic!("scale_plots: cannot write {}: {e}", path.display());
    }
    eprintln!("wrote {}", path.display());
}

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(out) = args.next().map(PathBuf::from) else {
        eprintln!("usage: scale_plots OUT_DIR CRITERION_DIR...");
        std::process::exit(2);
    };
    let runs: Vec<PathBuf> = args.map(PathBuf::from).collect();
    if let Err(e) = std::fs::create_dir_all(&out) {
        panic!("scale_plots: cannot create {}: {e}", out.display());
    }
    let flavors = [("current_thread", false), ("multi_thread", true)];

    // Many sessions.
    println!(
        "| runtime | sessions | raw baseline | by hand over `SimpleChannel` | handler | handler / raw |"
    );
    println!("|---|---|---|---|---|---|");
    let mut series = Vec::new();
    for (flavor, dashed) in flavors {
        let mut lines = [RAW, CHANNEL, HANDLER].map(|_| Vec::new());
        for n in [64.0, 1024.0] {
            let f = ["raw_mpsc_postcard", "simple_channel_postcard", "handler"]
                .map(|what| need(&runs, &format!("sessions_{flavor}/{what}/{n}")));
            println!(
                "| {flavor} | {n} | {} | {} | {} | {:.2} |",
                time(f[0]),
                time(f[1]),
                time(f[2]),
                f[2] / f[0]
            );
            for (l, v) in lines.iter_mut().zip(f) {
                l.push((n, v));
            }
        }
        let [raw, channel, handler] = lines;
        series.push(line(&format!("raw, {flavor}"), RAW, dashed, raw));
        series.push(line(
            &format!("channel, {flavor}"),
            CHANNEL,
            dashed,
            channel,
        ));
        series.push(line(
            &format!("handler, {flavor}"),
            HANDLER,
            dashed,
            handler,
        ));
    }
    let svg = plot(
        "Concurrent ping-pong sessions",
        "sessions",
        "aggregate time per round trip",
        false,
        &series,
    );
    write(&out, "scale-sessions.svg", &svg);

    // Ring relay.
    println!();
    println!("| runtime | roles | raw baseline | handler | handler / raw |");
    println!("|---|---|---|---|---|");
    let mut series = Vec::new();
    for (flavor, dashed) in flavors {
        let (mut raw, mut handler) = (Vec::new(), Vec::new());
        for k in [2.0, 8.0, 32.0, 128.0] {
            let r = need(&runs, &format!("ring_{flavor}/raw_mpsc_postcard/{k}"));
            let h = need(&runs, &format!("ring_{flavor}/handler/{k}"));
            println!(
                "| {flavor} | {k} | {} | {} | {:.2} |",
                time(r),
                time(h),
                h / r
            );
            raw.push((k, r));
            handler.push((k, h));
        }
        series.push(line(&format!("raw, {flavor}"), RAW, dashed, raw));
        series.push(line(
            &format!("handler, {flavor}"),
            HANDLER,
            dashed,
            handler,
        ));
    }
    let svg = plot(
        "Ring relay",
        "roles in the ring",
        "time per hop",
        false,
        &series,
    );
    write(&out, "scale-ring.svg", &svg);

    // Many peers.
    println!();
    println!("| registered peers | handler | raw baseline | handler / raw |");
    println!("|---|---|---|---|");
    let raw = need(&runs, "peers_current_thread/raw_mpsc_postcard");
    let two = need(&runs, "peers_current_thread/handler_two_roles");
    let mut handler = Vec::new();
    for n in [1.0, 100.0, 10_000.0] {
        let h = need(&runs, &format!("peers_current_thread/handler/{n}"));
        println!("| {n} | {} | {} | {:.2} |", time(h), time(raw), h / raw);
        handler.push((n, h));
    }
    println!(
        "| (two-role endpoint of the other benches) | {} | {} | {:.2} |",
        time(two),
        time(raw),
        two / raw
    );
    let flat = |v| vec![(1.0, v), (10_000.0, v)];
    let series = [
        line("raw baseline", RAW, false, flat(raw)),
        line("handler", HANDLER, false, handler),
    ];
    let svg = plot(
        "Endpoint with many peers (current thread)",
        "registered peers",
        "time per round trip",
        false,
        &series,
    );
    write(&out, "scale-peers.svg", &svg);

    // Payloads.
    println!();
    println!("| payload | raw baseline | handler | handler / raw |");
    println!("|---|---|---|---|");
    let (mut raw, mut handler) = (Vec::new(), Vec::new());
    for size in [16u64, 256, 4 << 10, 64 << 10, 256 << 10, 1 << 20] {
        let r = need(
            &runs,
            &format!("throughput_current_thread/raw_mpsc_postcard_{size}"),
        );
        let h = need(&runs, &format!("throughput_current_thread/handler_{size}"));
        let x = size as f64;
        println!(
            "| {} | {} | {} | {:.2} |",
            bytes(x),
            time(r),
            time(h),
            h / r
        );
        raw.push((x, r));
        handler.push((x, h));
    }
    let series = [
        line("raw baseline", RAW, false, raw),
        line("handler", HANDLER, false, handler),
    ];
    let svg = plot(
        "Payload size, one-way stream (current thread)",
        "payload per message",
        "time per message",
        true,
        &series,
    );
    write(&out, "scale-payloads.svg", &svg);

    // Monitors.
    println!();
    println!(
        "| workload | raw baseline | handler, no monitor | handler, monitor | monitor / no monitor |"
    );
    println!("|---|---|---|---|---|");
    for w in ["pingpong", "choice_reply"] {
        let f = ["raw_mpsc_postcard", "handler_no_monitor", "handler_monitor"]
            .map(|what| need(&runs, &format!("monitor_{w}/{what}")));
        println!(
            "| {w} | {} | {} | {} | {:.2} |",
            time(f[0]),
            time(f[1]),
            time(f[2]),
            f[2] / f[1]
        );
    }
}
