//! Measuring helpers the benchmarks share (core's and the plugins'). Not
//! part of the engine; public only so every bench crate can use them.

/// CPU seconds used by this process so far, all threads (the plugin's too),
/// user and system, from `/proc/self/stat` (in ticks of 1/100 s); 0 where
/// there is no `/proc`.
pub fn process_cpu() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}

/// The median of some measurements (the upper one of an even count).
pub fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// CPU seconds used so far by each live thread of this process, summed by
/// thread name (e.g. `sqlx-sqlite-worker`, `tokio-runtime-worker`), from
/// `/proc/self/task/*/` (`comm` and `schedstat`, in nanoseconds). Threads
/// that already ended are missing; empty where there is no `/proc`.
pub fn cpu_by_thread() -> std::collections::BTreeMap<String, f64> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return by_name;
    };
    for task in tasks.flatten() {
        let read = |file: &str| std::fs::read_to_string(task.path().join(file)).unwrap_or_default();
        let name = read("comm").trim().to_owned();
        let ns: f64 = read("schedstat")
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0.0);
        *by_name.entry(name).or_insert(0.0) += ns / 1e9;
    }
    by_name
}

/// What each thread name used since `before` (a [`cpu_by_thread`]), as
/// "name 0.12, …" in CPU seconds, threads that used none left out.
pub fn cpu_by_thread_since(before: &std::collections::BTreeMap<String, f64>) -> String {
    cpu_by_thread()
        .into_iter()
        .map(|(name, after)| (after - before.get(&name).unwrap_or(&0.0), name))
        .filter(|(used, _)| *used >= 0.005)
        .map(|(used, name)| format!("{name} {used:.2}"))
        .collect::<Vec<_>>()
        .join(", ")
}
