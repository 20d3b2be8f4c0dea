//! Measuring helpers the benchmarks share (core's and the plugins'). Not
//! part of the engine; public only so every bench crate can use them.

/// CPU seconds used by this process so far, all threads (the plugin's too),
/// user and system, from `/proc/self/stat` (in ticks of 1/100 s); 0 where
/// there is no `/proc`.
pub fn process_cpu() -> f64 {
    stat_cpu("/proc/self/stat").map_or(0.0, |c| c.own)
}

/// CPU seconds from a process's `stat` file (ticks of 1/100 s).
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessCpu {
    /// The process's own, all its threads, user and system (`utime` +
    /// `stime`).
    pub own: f64,
    /// Its children that ended and were waited for (`cutime` + `cstime`).
    pub ended_children: f64,
    /// Its parent's process id.
    pub parent: u32,
}

fn stat_cpu(path: &str) -> Option<ProcessCpu> {
    let stat = std::fs::read_to_string(path).ok()?;
    // After the command's ") ": state is field 3 of proc(5), index 0 here.
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    Some(ProcessCpu {
        own: (ticks(11) + ticks(12)) / 100.0,
        ended_children: (ticks(13) + ticks(14)) / 100.0,
        parent: fields.get(1).and_then(|v| v.parse().ok()).unwrap_or(0),
    })
}

/// The CPU of process `pid` so far (see [`ProcessCpu`]); None when there
/// is no such process (or no `/proc`).
pub fn cpu_of(pid: u32) -> Option<ProcessCpu> {
    stat_cpu(&format!("/proc/{pid}/stat"))
}

/// The live processes whose parent is `parent`, with their CPU so far.
pub fn children_cpu(parent: u32) -> Vec<(u32, ProcessCpu)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, cpu_of(pid)?)))
        .filter(|(_, cpu)| cpu.parent == parent)
        .collect()
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

/// A made-up partnership's directory CSVs in `dir` (replaced): `agencies_n`
/// agencies of `teams_per_agency` teams,
/// `people` people spread over the teams; each team's first person manages
/// it and its second is the team's neglect champion.
pub fn write_directory(
    dir: &std::path::Path,
    people: usize,
    agencies_n: usize,
    teams_per_agency: usize,
) {
    use std::fmt::Write as _;
    let teams = agencies_n * teams_per_agency;
    let mut agencies = String::from("agency_id,name,kind\n");
    for a in 0..agencies_n {
        writeln!(agencies, "ag-{a:02},Agency {a},local-authority").expect("writing to a String");
    }
    let mut team_rows = String::from("team_id,agency_id,name\n");
    for t in 0..teams {
        writeln!(
            team_rows,
            "t-{t:04},ag-{:02},Team {t}",
            t / teams_per_agency
        )
        .expect("writing to a String");
    }
    let mut rows = String::with_capacity(people * 110);
    rows.push_str("person_id,display_name,email,agency_id,team_id,roles,manager_id,time_zone\n");
    let mut champions = String::from("person_id,theme,teams\n");
    for i in 0..people {
        let t = i % teams;
        let a = t / teams_per_agency;
        let (roles, manager) = match i / teams {
            0 if i == 0 => ("business-unit;manager", String::new()),
            0 => ("manager", String::new()),
            _ => ("practitioner", format!("p-{t:07}")),
        };
        writeln!(
            rows,
            "p-{i:07},Person {i},person{i}@agency{a}.example,ag-{a:02},t-{t:04},{roles},{manager},"
        )
        .expect("writing to a String");
        if i / teams == 1 {
            writeln!(champions, "p-{i:07},neglect,t-{t:04}").expect("writing to a String");
        }
    }
    let _ = std::fs::remove_dir_all(dir);
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join("agencies.csv"), agencies).unwrap();
    std::fs::write(dir.join("teams.csv"), team_rows).unwrap();
    std::fs::write(dir.join("people.csv"), rows).unwrap();
    std::fs::write(dir.join("champions.csv"), champions).unwrap();
}

/// Writes `to`: the people file of [`write_directory`] at `people_csv`
/// with every tenth person moved to the next team of their agency.
pub fn write_moved_people(
    people_csv: &std::path::Path,
    to: &std::path::Path,
    teams_per_agency: usize,
) {
    let text = std::fs::read_to_string(people_csv).unwrap();
    let mut moved = String::with_capacity(text.len());
    for (i, line) in text.lines().enumerate() {
        if i > 0 && i % 10 == 0 {
            let mut fields: Vec<&str> = line.split(',').collect();
            let team: usize = fields[4].trim_start_matches("t-").parse().unwrap();
            let agency = team / teams_per_agency;
            let next = format!(
                "t-{:04}",
                agency * teams_per_agency + (team + 1) % teams_per_agency
            );
            fields[4] = &next;
            moved.push_str(&fields.join(","));
        } else {
            moved.push_str(line);
        }
        moved.push('\n');
    }
    std::fs::write(to, moved).unwrap();
}

/// A whole number from the environment (`1_000_000` allowed), or `default`.
pub fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.replace('_', "").parse().ok())
        .unwrap_or(default)
}

/// A `kB` field of /proc/self/status (`VmHWM:` for peak memory), or 0.
pub fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Writes `rollouts/<file>.toml` in `project`: rollout `id`, the example
/// briefing to everyone on the `outbox` channel in one catch-all wave,
/// urgent, started yesterday at noon London time (so all of it is due
/// now). The crash, several-serves and dispatch runs share it.
pub fn write_urgent_rollout(project: &std::path::Path, file: &str, id: &str) -> std::path::PathBuf {
    let london = chrono::Utc::now().with_timezone(&chrono_tz::Europe::London);
    let start = (london.date_naive() - chrono::Days::new(1))
        .and_hms_opt(12, 0, 0)
        .expect("noon exists");
    let path = project.join(format!("rollouts/{file}.toml"));
    std::fs::write(
        &path,
        format!(
            r#"id = "{id}"
item = "7mb-neglect-seeing-the-child"
start = {}
urgent = true
channels = ["outbox"]
ack_deadline_days = 28

[[waves]]
name = "Everyone"
after_days = 0
"#,
            start.format("%Y-%m-%dT%H:%M:%S")
        ),
    )
    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    path
}
