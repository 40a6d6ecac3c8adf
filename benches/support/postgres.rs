//! Throwaway PostgreSQL databases for the benchmarks that run on both backends: each run
//! gets a fresh database on the server of BENCH_DATABASE_URL, dropped at the end.
#![allow(dead_code)]

/// A fresh database on the PostgreSQL server of `admin_url`; returns its name and URL.
pub async fn create_pg_database(admin_url: &str) -> (String, String) {
    use sqlx::Connection;
    let mut conn = sqlx::PgConnection::connect(admin_url)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to BENCH_DATABASE_URL: {e}"));
    let mut random = [0u8; 6];
    getrandom::fill(&mut random).expect("randomness");
    let name = format!("bench_{}", hex::encode(random));
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("CREATE DATABASE");
    let _ = conn.close().await;
    let mut url = url::Url::parse(admin_url).expect("BENCH_DATABASE_URL is a URL");
    url.set_path(&name);
    (name, url.to_string())
}

pub async fn drop_pg_database(admin_url: &str, name: &str) {
    use sqlx::Connection;
    let Ok(mut conn) = sqlx::PgConnection::connect(admin_url).await else {
        eprintln!("bench: cannot reconnect to drop the database {name}");
        return;
    };
    if let Err(e) =
        sqlx::raw_sql(sqlx::AssertSqlSafe(format!("DROP DATABASE IF EXISTS {name}"))).execute(&mut conn).await
    {
        eprintln!("bench: DROP DATABASE {name} failed: {e}");
    }
    let _ = conn.close().await;
}
