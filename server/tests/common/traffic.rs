//! A signed-in browser that keeps working through a key rotation: it refreshes its session over and
//! over, alternating between servers, and calls a protected route with each new access token on the
//! *other* server and with its very first access token. Every answer must be 200: a rotation drops
//! no request and signs no one out.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use serde_json::Value;

/// The `kid` in an access token's header.
pub fn kid_of(access_token: &str) -> String {
    let header = access_token.split('.').next().unwrap();
    let header: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(header).unwrap()).unwrap();
    header["kid"].as_str().unwrap().to_owned()
}

/// What the traffic saw.
#[derive(Debug, Default)]
pub struct Report {
    /// Requests made.
    pub requests: usize,
    /// Every answer that was not a 200, described.
    pub failures: Vec<String>,
    /// The kids of the access tokens handed out, in the order first seen.
    pub kids: Vec<String>,
    /// The prefixes (`rt1.`, `rt2.`) of the refresh tokens handed out, in the order first seen.
    pub refresh_forms: Vec<String>,
}

pub struct Traffic {
    stop: Arc<AtomicBool>,
    report: Arc<Mutex<Report>>,
    task: tokio::task::JoinHandle<()>,
}

impl Traffic {
    /// Starts refreshing `refresh_token` in turn on each of `bases`, ten times a second at most.
    pub fn start(bases: Vec<String>, refresh_token: String, first_access_token: String) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let report = Arc::new(Mutex::new(Report::default()));
        let (stop_flag, shared) = (stop.clone(), report.clone());
        let task = tokio::spawn(async move {
            let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
            let mut refresh_token = refresh_token;
            let mut round = 0;
            while !stop_flag.load(Ordering::SeqCst) {
                let (here, there) = (&bases[round % bases.len()], &bases[(round + 1) % bases.len()]);
                round += 1;
                let refreshed = http
                    .post(format!("{here}/auth/refresh"))
                    .header("cookie", format!("reauth_refresh={refresh_token}"))
                    .send()
                    .await;
                shared.lock().unwrap().requests += 1;
                let response = match refreshed {
                    Ok(response) if response.status() == 200 => response,
                    Ok(response) => {
                        let status = response.status();
                        let body = response.text().await.unwrap_or_default();
                        shared.lock().unwrap().failures.push(format!("refresh on {here}: {status} {body}"));
                        break;
                    }
                    Err(error) => {
                        shared.lock().unwrap().failures.push(format!("refresh on {here}: {error}"));
                        break;
                    }
                };
                let cookie = response
                    .headers()
                    .get_all("set-cookie")
                    .iter()
                    .filter_map(|value| value.to_str().ok())
                    .find_map(|line| line.split(';').next()?.strip_prefix("reauth_refresh=").map(str::to_owned))
                    .unwrap();
                let body: Value = response.json().await.unwrap();
                let access_token = body["access_token"].as_str().unwrap().to_owned();
                refresh_token = cookie;
                {
                    let mut report = shared.lock().unwrap();
                    let kid = kid_of(&access_token);
                    if !report.kids.contains(&kid) {
                        report.kids.push(kid);
                    }
                    let form = refresh_token[..4].to_owned();
                    if !report.refresh_forms.contains(&form) {
                        report.refresh_forms.push(form);
                    }
                }
                for (base, token, what) in
                    [(there, &access_token, "new access token"), (here, &first_access_token, "first access token")]
                {
                    let answer = http.get(format!("{base}/api/me")).bearer_auth(token).send().await;
                    let mut report = shared.lock().unwrap();
                    report.requests += 1;
                    match answer {
                        Ok(answer) if answer.status() == 200 => {}
                        Ok(answer) => {
                            report.failures.push(format!("/api/me on {base} with the {what}: {}", answer.status()))
                        }
                        Err(error) => report.failures.push(format!("/api/me on {base} with the {what}: {error}")),
                    }
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
        Self { stop, report, task }
    }

    /// Waits, a bounded while, until the traffic has been handed an access token signed by `kid`.
    pub async fn wait_for_kid(&self, kid: &str) {
        self.wait_until(|report| report.kids.iter().any(|seen| seen == kid), &format!("a token signed by {kid}")).await
    }

    /// Waits, a bounded while, until the traffic has been handed a refresh token of `form`.
    pub async fn wait_for_refresh_form(&self, form: &str) {
        self.wait_until(|report| report.refresh_forms.iter().any(|seen| seen == form), &format!("an {form} token"))
            .await
    }

    async fn wait_until(&self, done: impl Fn(&Report) -> bool, what: &str) {
        for _ in 0..120 {
            {
                let report = self.report.lock().unwrap();
                assert!(report.failures.is_empty(), "failures while waiting for {what}: {:?}", report.failures);
                if done(&report) {
                    return;
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        panic!("never got {what}: {:?}", self.report.lock().unwrap());
    }

    /// Stops and returns what was seen.
    pub async fn finish(self) -> Report {
        self.stop.store(true, Ordering::SeqCst);
        self.task.await.unwrap();
        std::mem::take(&mut *self.report.lock().unwrap())
    }
}
