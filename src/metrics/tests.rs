use super::*;

#[test]
fn get_and_head_of_metrics_are_answered() {
    assert_eq!(
        parse(b"GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: */*\r\n\r\n"),
        Ok(Asked::Metrics)
    );
    assert_eq!(parse(b"HEAD /metrics HTTP/1.0\r\n\r\n"), Ok(Asked::Head));
    // Prometheus sends no query string, but one does not change the path.
    assert_eq!(parse(b"GET /metrics?x=1 HTTP/1.1\n\n"), Ok(Asked::Metrics));
}

#[test]
fn other_paths_methods_and_versions_are_refused() {
    assert_eq!(parse(b"GET / HTTP/1.1\r\n\r\n"), Err(Refusal::NotFound));
    assert_eq!(
        parse(b"GET /metricsx HTTP/1.1\r\n\r\n"),
        Err(Refusal::NotFound)
    );
    assert_eq!(
        parse(b"POST /metrics HTTP/1.1\r\n\r\n"),
        Err(Refusal::MethodNotAllowed)
    );
    assert_eq!(parse(b"DELETE /x HTTP/1.1\r\n\r\n"), Err(Refusal::NotFound));
    assert_eq!(
        parse(b"GET /metrics HTTP/2.0\r\n\r\n"),
        Err(Refusal::VersionNotSupported)
    );
    for bad in [
        &b""[..],
        b"\r\n\r\n",
        b"GET\r\n\r\n",
        b"GET /metrics\r\n\r\n",
        b"GET /metrics HTTP/1.1 extra\r\n\r\n",
        b"GET  /metrics HTTP/1.1\r\n\r\n",
        b"GET /metrics FTP/1.1\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\nno colon\r\n\r\n",
        b"GET /metrics HTTP/1.1\r\n: empty name\r\n\r\n",
        b"GET /m\xffetrics HTTP/1.1\r\n\r\n",
        b"G\x00T /metrics HTTP/1.1\r\n\r\n",
    ] {
        assert_eq!(
            parse(bad),
            Err(Refusal::BadRequest),
            "{:?}",
            String::from_utf8_lossy(bad)
        );
    }
}

#[test]
fn the_head_ends_at_the_first_empty_line() {
    assert_eq!(head_end(b"GET / HTTP/1.1\r\n\r\nbody"), Some(18));
    assert_eq!(head_end(b"GET / HTTP/1.1\n\nbody"), Some(16));
    assert_eq!(head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    assert_eq!(head_end(b""), None);
}

/// A small deterministic generator (xorshift): the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn malformed_requests_never_panic() {
    let valid = b"GET /metrics HTTP/1.1\r\nHost: 127.0.0.1:9654\r\n\r\n".to_vec();
    let alphabet = b"GETHADPOS /metrics?HTTP1.0\r\n: \x00\xff\xc3";
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    for _ in 0..50_000 {
        let mut req = valid.clone();
        // Mutate: replace, insert and delete bytes, or truncate.
        for _ in 0..(rng.next() % 6) {
            let i = (rng.next() as usize) % (req.len() + 1);
            let b = alphabet[(rng.next() as usize) % alphabet.len()];
            match rng.next() % 4 {
                0 if i < req.len() => req[i] = b,
                1 => req.insert(i, b),
                2 if i < req.len() => {
                    req.remove(i);
                }
                _ => req.truncate(i),
            }
        }
        let end = head_end(&req).unwrap_or(req.len());
        let _ = parse(&req[..end]);
        // Random bytes too.
        let len = (rng.next() % 64) as usize;
        let junk: Vec<u8> = (0..len).map(|_| rng.next() as u8).collect();
        let _ = head_end(&junk);
        let _ = parse(&junk);
    }
}
