//! Policy decision cost: the full authorize check on realistic compiled records.

use criterion::{Criterion, black_box, criterion_group, criterion_main};
use policy::acl::parse_cidrs;
use policy::kv::KeyName;
use policy::records::{self, SCHEMA_VERSION};
use policy::{
    Facts, IpAcl, KeyRecord, KeyStatus, Limits, ModelSet, OrgRecord, ProviderRoute, Subject,
    authorize,
};

fn records() -> (KeyRecord, OrgRecord) {
    let key = KeyRecord {
        schema_version: SCHEMA_VERSION,
        key_id: "key_01".into(),
        org_id: "org_01".into(),
        team_id: None,
        agent_id: None,
        status: KeyStatus::Active,
        expires_at_ms: Some(u64::MAX),
        models: ModelSet::from_patterns(
            [
                "gpt-4o",
                "gpt-4o-mini",
                "o3-mini",
                "text-embedding-3-small",
                "claude-*",
            ]
            .map(|m| m.parse().unwrap()),
        ),
        ip_acl: IpAcl {
            allow: parse_cidrs(&["10.0.0.0/8", "192.168.0.0/16", "2001:db8::/32"]).unwrap(),
            deny: parse_cidrs(&["10.66.0.0/16"]).unwrap(),
        },
        limits: Limits {
            rpm: Some(100),
            tpm: Some(100_000),
            ..Default::default()
        },
        budget: None,
        route_groups: Vec::new(),
    };
    let org = OrgRecord {
        schema_version: SCHEMA_VERSION,
        org_id: "org_01".into(),
        slug: "acme".into(),
        active: true,
        providers: vec![ProviderRoute {
            name: "openai".into(),
            base_url: "https://api.openai.com/v1".into(),
            api_key: Some("sk-upstream".into()),
            models: vec![
                "gpt-*".parse().unwrap(),
                "o3-*".parse().unwrap(),
                "text-embedding-*".parse().unwrap(),
            ],
            weight: None,
        }],
        limits: Limits {
            rpm: Some(1000),
            ..Default::default()
        },
        budget: None,
        client_ip_header: None,
        prices: Vec::new(),
        max_in_flight: None,
        allowed_upstreams: Vec::new(),
        default_max_output_tokens: None,
        cache_ttl_seconds: None,
        store_content: false,
        routing: Default::default(),
    };
    (key, org)
}

fn bench(c: &mut Criterion) {
    let (key, org) = records();
    let facts = Facts {
        now_ms: 1_795_428_930_000,
        client_ip: Some("10.1.2.3".parse().unwrap()),
        model: Some("gpt-4o-mini"),
    };
    c.bench_function("authorize (key, org, ip acl, model)", |b| {
        b.iter(|| {
            authorize(
                black_box(&Subject {
                    key: &key,
                    org: &org,
                    team: None,
                    agent: None,
                }),
                black_box(&facts),
            )
        })
    });
    c.bench_function("kv key name (sha-256 of the presented key)", |b| {
        b.iter(|| {
            KeyName::of(black_box(
                "sk-tg-0123456789abcdefghijklmnopqrstuvwxyzABCDEF",
            ))
            .as_str()
            .len()
        })
    });
    let key_bytes = records::encode(&key);
    let org_bytes = records::encode(&org);
    c.bench_function("decode key + org records", |b| {
        b.iter(|| {
            let k: KeyRecord = records::decode(black_box(&key_bytes)).unwrap();
            let o: OrgRecord = records::decode(black_box(&org_bytes)).unwrap();
            (k, o)
        })
    });
    // What the edge adds per forwarded request: parse the `edge_keys` setting and
    // open one credential.
    let setting = "k2:AgICAgICAgICAgICAgICAgICAgICAgICAgICAgICAgI=,k1:AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let aad = policy::sealed::provider_credential_aad("org_0123456789abcdef", "openai");
    let sealed = policy::sealed::KeyRing::parse(setting)
        .unwrap()
        .seal(
            [9; 24],
            b"sk-proj-0123456789abcdefghijklmnopqrstuvwxyz0123456789",
            &aad,
        )
        .unwrap();
    c.bench_function("edge key ring parse + credential open", |b| {
        b.iter(|| {
            let ring = policy::sealed::KeyRing::parse(black_box(setting)).unwrap();
            ring.open(black_box(&sealed), &aad).unwrap().len()
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
