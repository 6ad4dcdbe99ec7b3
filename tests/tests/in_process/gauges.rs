//! The gauges read from the broker's state at every metrics collection.

use super::*;
use infoshare_server::broker::{Broker, Caller};

/// The inbox-depth gauge's figure for `agency`, checked against the inbox read whole.
fn depth(world: &World, agency: &str) -> u64 {
    depth_by(&world.broker, world, agency)
}

fn depth_by(broker: &Broker, world: &World, agency: &str) -> u64 {
    let gauge = broker.inbox_depths().unwrap();
    let n = gauge
        .iter()
        .find(|(a, _)| a == agency)
        .map(|(_, n)| *n)
        .unwrap_or_else(|| panic!("no inbox depth for {agency}: {gauge:?}"));
    let (open, more) = world
        .broker
        .inbox_page(&world.agency(agency), 0, 500, true)
        .unwrap();
    assert!(!more);
    assert_eq!(
        n,
        open.len() as u64,
        "{agency}: gauge against the inbox read whole"
    );
    n
}

/// Counted again at every collection from what changed since the last (items added, items
/// acknowledged since), the gauge agrees with the inbox read whole at every step, and a broker
/// started afresh on the same log counts the same.
async fn the_inbox_depth_gauge_follows_what_is_added_and_acknowledged(world: World) {
    let police = world.agency("police");
    let school = world.agency("rangitoto-school-board");
    let submit = async |key: &str| {
        world
            .submit_sample(&police, key)
            .await
            .request_id
            .to_string()
    };
    let acknowledge = async |who: &Caller, id: &str, kind: MessageKind| {
        world.broker.acknowledge(who, &ack(id, kind)).await.unwrap();
    };
    assert_eq!(depth(&world, "rangitoto-school-board"), 0);
    let mut ids = Vec::new();
    for key in ["g1", "g2", "g3"] {
        ids.push(submit(key).await);
    }
    assert_eq!(depth(&world, "rangitoto-school-board"), 3);
    acknowledge(&school, &ids[0], MessageKind::Request).await;
    assert_eq!(depth(&world, "rangitoto-school-board"), 2);
    for key in ["g4", "g5"] {
        ids.push(submit(key).await);
    }
    for id in &ids[1..3] {
        acknowledge(&school, id, MessageKind::Request).await;
    }
    // The two still open at the last count are acknowledged now; the two new ones are open.
    assert_eq!(depth(&world, "rangitoto-school-board"), 2);
    assert_eq!(depth(&world, "police"), 0);
    world
        .broker
        .respond(&school, &respond(&ids[0], sample_disclosure()))
        .await
        .unwrap();
    assert_eq!(depth(&world, "police"), 1);
    acknowledge(&police, &ids[0], MessageKind::Response).await;
    assert_eq!(depth(&world, "police"), 0);
    assert_eq!(depth(&world, "rangitoto-school-board"), 2);
    let again = world.another_broker();
    assert_eq!(depth_by(&again, &world, "rangitoto-school-board"), 2);
    assert_eq!(depth_by(&again, &world, "police"), 0);
}
on_memory_and_postgres!(the_inbox_depth_gauge_follows_what_is_added_and_acknowledged);
