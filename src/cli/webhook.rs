//! `berth webhook ...`: the `az acr webhook` verbs, over the registry's
//! admin API (`/api/webhooks`).

use clap::Subcommand;
use serde_json::{json, Map, Value};

use super::client::{self, cell, emit, pairs, print_json, table, Client, Output, RemoteArgs};

/// The actions a webhook can subscribe to (and the event log can filter on).
pub const ACTIONS: [&str; 5] = ["push", "delete", "chart_push", "chart_delete", "quarantine"];

/// Largest page of list-events the API serves.
const PAGE: usize = 50;

/// Flags of `berth webhook`.
#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    #[command(flatten)]
    remote: RemoteArgs,
    #[command(subcommand)]
    verb: Verb,
}

/// The verbs of `berth webhook`.
#[derive(Debug, Subcommand)]
enum Verb {
    /// Create a webhook.
    Create(CreateArgs),
    /// Change any field of a webhook but its name.
    Update(UpdateArgs),
    /// List the webhooks (without header values or URIs).
    List,
    /// Show one webhook (without header values or its URI).
    Show(NameArg),
    /// Show a webhook's service URI and custom headers, values included.
    GetConfig(NameArg),
    /// Delete a webhook and its delivery history.
    Delete(NameArg),
    /// Send a ping now; fails unless the receiver answers 2xx.
    Ping(NameArg),
    /// List a webhook's recent deliveries, newest first.
    ListEvents(ListEventsArgs),
    /// Send a recorded delivery again (same event id and body), now.
    Redeliver(RedeliverArgs),
    /// Queue again every event the registry's log still holds in a range
    /// that matches the webhook (after an outage, or for a new webhook).
    Replay(ReplayArgs),
}

/// Flags of `berth webhook redeliver`.
#[derive(Debug, clap::Args)]
struct RedeliverArgs {
    /// Name of the webhook.
    #[arg(long, short = 'n')]
    name: String,
    /// The event id of the delivery (the ID column of list-events).
    #[arg(long)]
    id: String,
}

/// Flags of `berth webhook replay`.
#[derive(Debug, clap::Args)]
struct ReplayArgs {
    /// Name of the webhook.
    #[arg(long, short = 'n')]
    name: String,
    /// Events at or after this: an RFC 3339 time, or how long ago (`1h`,
    /// `30m`, `2d`).
    #[arg(long)]
    since: Option<String>,
    /// Events at or before this (same forms as --since).
    #[arg(long)]
    until: Option<String>,
    /// Events after this sequence number (the `seq` of `berth events`).
    #[arg(long)]
    after: Option<u64>,
}

/// `--name`, the only flag of several verbs.
#[derive(Debug, clap::Args)]
struct NameArg {
    /// Name of the webhook.
    #[arg(long, short = 'n')]
    name: String,
}

/// Flags of `berth webhook create`.
#[derive(Debug, clap::Args)]
struct CreateArgs {
    /// Name of the webhook: 5 to 50 letters and digits.
    #[arg(long, short = 'n')]
    name: String,
    /// Service URI the events are POSTed to.
    #[arg(long)]
    uri: String,
    /// Actions that trigger the webhook (space- or comma-separated).
    #[arg(long, required = true, num_args = 1.., value_delimiter = ',', value_parser = ACTIONS)]
    actions: Vec<String>,
    #[command(flatten)]
    optional: OptionalArgs,
}

/// Flags of `berth webhook update`.
#[derive(Debug, clap::Args)]
struct UpdateArgs {
    /// Name of the webhook.
    #[arg(long, short = 'n')]
    name: String,
    /// Service URI the events are POSTed to.
    #[arg(long)]
    uri: Option<String>,
    /// Actions that trigger the webhook (space- or comma-separated).
    #[arg(long, num_args = 1.., value_delimiter = ',', value_parser = ACTIONS)]
    actions: Option<Vec<String>>,
    #[command(flatten)]
    optional: OptionalArgs,
}

/// The fields create and update share, all optional.
#[derive(Debug, clap::Args)]
struct OptionalArgs {
    /// `repository:tag`, `repository:*`, or a bare repository (its `latest`
    /// tag); empty for every event of the registry.
    #[arg(long)]
    scope: Option<String>,
    /// Custom headers, each `Key: Value` or `Key=Value`. On update, they
    /// replace all existing ones; `--headers` alone removes them all.
    #[arg(long, num_args = 0..)]
    headers: Option<Vec<String>>,
    /// Whether the webhook receives events.
    #[arg(long, value_parser = ["enabled", "disabled"])]
    status: Option<String>,
    /// Signing secret (Standard Webhooks signatures); none by default.
    #[arg(long)]
    secret: Option<String>,
    /// Wire format: `acr` (ACR's payload, the default) or `cloudevents`
    /// (a CloudEvents 1.0 envelope around it).
    #[arg(long, value_parser = ["acr", "cloudevents"])]
    format: Option<String>,
    /// Receive only the events of the replicas in this location; on
    /// update, `--location ""` makes it receive every location's events.
    #[arg(long)]
    location: Option<String>,
}

/// Flags of `berth webhook list-events`.
#[derive(Debug, clap::Args)]
struct ListEventsArgs {
    /// Name of the webhook.
    #[arg(long, short = 'n')]
    name: String,
    /// How many deliveries to list (default: the API's first page of 50).
    #[arg(long, value_parser = clap::value_parser!(u32).range(1..))]
    top: Option<u32>,
}

/// Runs one `berth webhook` verb.
pub fn run(args: WebhookArgs) -> Result<(), String> {
    let client = Client::new(&args.remote.registry)?;
    let out = args.remote.output;
    let path = |name: &str| format!("/api/webhooks/{}", client::segment(name));
    match args.verb {
        Verb::Create(a) => {
            let mut body = a.optional.fields()?;
            body.insert("serviceUri".into(), json!(a.uri));
            body.insert("actions".into(), json!(a.actions));
            let v = client.send("PUT", &path(&a.name), &[], Some(&Value::Object(body)))?;
            print_hook(out, &v)
        }
        Verb::Update(a) => {
            let mut body = a.optional.fields()?;
            if let Some(uri) = a.uri {
                body.insert("serviceUri".into(), json!(uri));
            }
            if let Some(actions) = a.actions {
                body.insert("actions".into(), json!(actions));
            }
            if body.is_empty() {
                return Err("nothing to update: give at least one of --uri, --actions, \
                            --scope, --headers, --status, --secret, --format, --location"
                    .into());
            }
            let v = client.send("PATCH", &path(&a.name), &[], Some(&Value::Object(body)))?;
            print_hook(out, &v)
        }
        Verb::List => {
            let v = client.get("/api/webhooks", &[])?;
            print_list(out, &v)
        }
        Verb::Show(a) => print_hook(out, &client.get(&path(&a.name), &[])?),
        Verb::GetConfig(a) => {
            let v = client.get(&format!("{}/config", path(&a.name)), &[])?;
            print_config(out, &v)
        }
        Verb::Delete(a) => {
            let v = client.send("DELETE", &path(&a.name), &[], None)?;
            match out {
                Output::Json => print_json(&v),
                Output::Table => emit(&format!("deleted webhook {}\n", a.name)),
            }
        }
        Verb::Ping(a) => {
            let v = client.send("POST", &format!("{}/ping", path(&a.name)), &[], None)?;
            sent(out, &format!("ping of {}", a.name), &v)
        }
        Verb::ListEvents(a) => {
            let v = list_events(&client, &path(&a.name), a.top)?;
            print_events(out, &v)
        }
        Verb::Redeliver(a) => {
            let target = format!(
                "{}/events/{}/redeliver",
                path(&a.name),
                client::segment(&a.id)
            );
            let v = client.send("POST", &target, &[], None)?;
            sent(out, &format!("redelivery of {} to {}", a.id, a.name), &v)
        }
        Verb::Replay(a) => {
            let mut body = Map::new();
            if let Some(since) = &a.since {
                body.insert("since".into(), json!(time_arg("--since", since)?));
            }
            if let Some(until) = &a.until {
                body.insert("until".into(), json!(time_arg("--until", until)?));
            }
            if let Some(after) = a.after {
                body.insert("after".into(), json!(after));
            }
            let target = format!("{}/replay", path(&a.name));
            let v = client.send("POST", &target, &[], Some(&Value::Object(body)))?;
            print_replay(out, &a.name, &v)
        }
    }
}

/// An RFC 3339 time as given, or `how long ago` (`1h`) as RFC 3339.
fn time_arg(flag: &str, value: &str) -> Result<String, String> {
    if humantime::parse_rfc3339_weak(value).is_ok() {
        return Ok(value.to_owned());
    }
    let ago = humantime::parse_duration(value).map_err(|_| {
        format!("{flag} {value:?}: expected an RFC 3339 time or a duration such as 1h")
    })?;
    let at = std::time::SystemTime::now()
        .checked_sub(ago)
        .ok_or_else(|| format!("{flag} {value:?}: too long ago"))?;
    Ok(humantime::format_rfc3339_seconds(at).to_string())
}

/// Prints what a replay queued and what the log holds.
fn print_replay(out: Output, name: &str, v: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(v);
    }
    let span = |k: &str| match v[k].as_array() {
        Some(p) => format!("{} ({})", cell(&p[0]), cell(&p[1])),
        None => "(empty)".to_owned(),
    };
    emit(&pairs(&[
        ("Webhook", name.to_owned()),
        ("Queued", cell(&v["queued"])),
        ("Already queued", cell(&v["alreadyQueued"])),
        ("Dropped (queue full)", cell(&v["dropped"])),
        ("Oldest event in the log", span("oldest")),
        ("Newest event in the log", span("newest")),
    ]))
}

impl OptionalArgs {
    /// The JSON fields given on the command line.
    fn fields(&self) -> Result<Map<String, Value>, String> {
        let mut body = Map::new();
        if let Some(scope) = &self.scope {
            body.insert("scope".into(), json!(scope));
        }
        if let Some(headers) = &self.headers {
            body.insert("customHeaders".into(), json!(parse_headers(headers)?));
        }
        if let Some(status) = &self.status {
            body.insert("status".into(), json!(status));
        }
        if let Some(secret) = &self.secret {
            body.insert("secret".into(), json!(secret));
        }
        if let Some(format) = &self.format {
            body.insert("format".into(), json!(format));
        }
        if let Some(location) = &self.location {
            body.insert("location".into(), json!(location));
        }
        Ok(body)
    }
}

/// `Key: Value` or `Key=Value` items as a map, split on the first `:` or `=`
/// and trimmed, as `az` does. Empty items are skipped.
fn parse_headers(items: &[String]) -> Result<Map<String, Value>, String> {
    let mut map = Map::new();
    for item in items.iter().filter(|i| !i.trim().is_empty()) {
        let (key, value) = item
            .find([':', '='])
            .map(|i| (item[..i].trim(), item[i + 1..].trim()))
            .ok_or_else(|| format!("header {item:?}: expected \"Key: Value\" or \"Key=Value\""))?;
        if key.is_empty() {
            return Err(format!("header {item:?}: the name is empty"));
        }
        map.insert(key.to_owned(), json!(value));
    }
    Ok(map)
}

/// Pages through `GET .../events` until `top` deliveries (or one page).
fn list_events(client: &Client, path: &str, top: Option<u32>) -> Result<Value, String> {
    let want = top.map(|t| t as usize);
    let path = format!("{path}/events");
    let mut value: Vec<Value> = Vec::new();
    loop {
        let n = want.map_or(PAGE, |w| (w - value.len()).min(PAGE));
        let query = [("n", n.to_string()), ("skip", value.len().to_string())];
        let mut page = client.get(&path, &query)?;
        let items = match page["value"].take() {
            Value::Array(items) => items,
            _ => Vec::new(),
        };
        let got = items.len();
        value.extend(items);
        let more = page.get("nextLink").is_some();
        let done = want.is_none_or(|w| value.len() >= w) || !more || got == 0;
        if done {
            page["value"] = Value::Array(value);
            return Ok(page);
        }
    }
}

/// Prints one webhook's summary (show, create, update).
fn print_hook(out: Output, v: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(v);
    }
    let headers = match cell(&v["customHeaders"]) {
        h if h.is_empty() => "(none)".to_owned(),
        h => h,
    };
    let mut lines = vec![
        ("Name", cell(&v["name"])),
        ("Status", cell(&v["status"])),
        ("Scope", cell(&v["scope"])),
        ("Actions", cell(&v["actions"])),
        ("Custom headers", headers),
        ("Signed", cell(&v["signed"])),
        ("Format", cell(&v["format"])),
        ("Location", or_all(&v["location"])),
    ];
    if v.get("pending").is_some() {
        lines.push(("Pending", cell(&v["pending"])));
    }
    emit(&pairs(&lines))
}

/// A webhook's location, or `(all)` for one that receives every location's
/// events.
fn or_all(location: &Value) -> String {
    match cell(location) {
        l if l.is_empty() => "(all)".to_owned(),
        l => l,
    }
}

/// Prints the list of webhooks.
fn print_list(out: Output, v: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(v);
    }
    let rows: Vec<Vec<String>> = v["webhooks"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|h| {
            [
                "name",
                "status",
                "scope",
                "actions",
                "customHeaders",
                "signed",
                "pending",
            ]
            .iter()
            .map(|k| cell(&h[*k]))
            .chain([or_all(&h["location"])])
            .collect()
        })
        .collect();
    let headers = [
        "NAME", "STATUS", "SCOPE", "ACTIONS", "HEADERS", "SIGNED", "PENDING", "LOCATION",
    ];
    emit(&table(&headers, &rows))
}

/// Prints the service URI and the custom headers with their values.
fn print_config(out: Output, v: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(v);
    }
    let mut lines = vec![("Service URI", cell(&v["serviceUri"]))];
    let headers = v["customHeaders"].as_object().filter(|h| !h.is_empty());
    if headers.is_none() {
        lines.push(("Custom headers", "(none)".into()));
    }
    let mut text = pairs(&lines);
    if let Some(headers) = headers {
        text.push_str("Custom headers:\n");
        for (k, val) in headers {
            text.push_str(&format!("  {k}: {}\n", cell(val)));
        }
    }
    emit(&text)
}

/// Prints the outcome of a ping or a redelivery (`what`); an error unless
/// the receiver answered 2xx.
fn sent(out: Output, what: &str, v: &Value) -> Result<(), String> {
    let id = cell(&v["id"]);
    let code = v["statusCode"].as_u64();
    if out == Output::Json {
        print_json(v)?;
    } else if let Some(code) = code {
        emit(&format!("{what} ({id}): receiver answered HTTP {code}\n"))?;
    } else {
        emit(&format!(
            "{what} ({id}): no response: {}\n",
            cell(&v["error"])
        ))?;
    }
    match code {
        Some(c) if (200..300).contains(&c) => Ok(()),
        Some(c) => Err(format!("{what}: the receiver answered HTTP {c}")),
        None => Err(format!(
            "{what}: no response from the receiver: {}",
            cell(&v["error"])
        )),
    }
}

/// Prints a webhook's deliveries.
fn print_events(out: Output, v: &Value) -> Result<(), String> {
    if out == Output::Json {
        return print_json(v);
    }
    let rows: Vec<Vec<String>> = v["value"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|e| {
            vec![
                cell(&e["id"]),
                cell(&e["timestamp"]),
                cell(&e["result"]),
                cell(&e["eventResponseMessage"]["statusCode"]),
                cell(&e["attempts"]),
                cell(&e["error"]),
            ]
        })
        .collect();
    let headers = [
        "ID",
        "TIMESTAMP",
        "RESULT",
        "STATUS CODE",
        "ATTEMPTS",
        "ERROR",
    ];
    let mut text = table(&headers, &rows);
    if v.get("nextLink").is_some() {
        text.push_str("(more deliveries: raise --top)\n");
    }
    emit(&text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_take_both_syntaxes_and_split_on_the_first_separator() {
        let items = [
            "X-Token: abc=".to_owned(),
            " Other = val:1 ".to_owned(),
            String::new(),
        ];
        let map = parse_headers(&items).unwrap();
        assert_eq!(map["X-Token"], "abc=");
        assert_eq!(map["Other"], "val:1");
        assert_eq!(map.len(), 2);
        assert!(parse_headers(&["novalue".to_owned()]).is_err());
        assert!(parse_headers(&[": v".to_owned()]).is_err());
    }
}
