//! DynamoDB's answers moto cannot give, from stubbed SDK responses (`aws-smithy-mocks`): what
//! `DynamoStore` makes of a transaction in progress, a collision with another transaction, a
//! throttle, and a single write whose failed condition shows the item it would have written.

use aws_sdk_dynamodb::operation::transact_write_items::{TransactWriteItemsError, TransactWriteItemsOutput};
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::error::{
    ConditionalCheckFailedException, ProvisionedThroughputExceededException, TransactionCanceledException,
    TransactionInProgressException,
};
use aws_sdk_dynamodb::types::{AttributeValue, CancellationReason};
use aws_smithy_mocks::{mock, mock_client, RuleMode};

use shared::adapters::aws::DynamoStore;
use shared::ports::{Cond, Item, Store, StoreError, Transaction, Write};

fn item() -> Item {
    Item::Membership { user_id: "u1".into(), conversation_id: "c1".into() }
}

fn two_writes() -> Transaction {
    Transaction::new(vec![
        Write::Put { item: item(), cond: Cond::NotExists },
        Write::Put { item: Item::Unassigned { conversation_id: "c1".into() }, cond: Cond::NotExists },
    ])
}

#[tokio::test]
async fn a_transaction_in_progress_is_an_unknown_outcome_never_nothing_written() {
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::TransactionInProgressException(TransactionInProgressException::builder().build())
    });
    let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]), "t");
    let answer = store.submit(&two_writes()).await;
    assert!(matches!(answer, Err(StoreError::Unknown(_))), "{answer:?}");
}

#[tokio::test]
async fn a_collision_or_a_throttle_wrote_nothing_and_names_no_write() {
    let conflict = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(|| {
        let reasons = [
            CancellationReason::builder().code("None").build(),
            CancellationReason::builder().code("TransactionConflict").build(),
        ];
        TransactWriteItemsError::TransactionCanceledException(
            TransactionCanceledException::builder().set_cancellation_reasons(Some(reasons.to_vec())).build(),
        )
    });
    let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&conflict]), "t");
    assert!(matches!(store.submit(&two_writes()).await, Err(StoreError::Busy)));

    let throttled = mock!(aws_sdk_dynamodb::Client::transact_write_items).then_error(|| {
        TransactWriteItemsError::ProvisionedThroughputExceededException(
            ProvisionedThroughputExceededException::builder().build(),
        )
    });
    let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&throttled]), "t");
    assert!(matches!(store.submit(&two_writes()).await, Err(StoreError::Busy)));
}

#[tokio::test]
async fn the_token_goes_with_every_submission_of_one_transaction() {
    let rule = mock!(aws_sdk_dynamodb::Client::transact_write_items)
        .match_requests(|r| r.client_request_token() == Some("01TOKENOFTHISTRANSACTION00"))
        .then_output(|| TransactWriteItemsOutput::builder().build());
    let store = DynamoStore::new(mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&rule]), "t");
    let mut tx = two_writes();
    tx.token = "01TOKENOFTHISTRANSACTION00".into();
    store.submit(&tx).await.unwrap();
    tx.resubmitted = true;
    store.submit(&tx).await.unwrap();
}

/// A single write has no token: resubmitted after its answer was lost, a failed condition over
/// an item that already is what it writes is that write, committed; a first submission's is a
/// conflict, as on every store.
#[tokio::test]
async fn a_resubmitted_single_write_knows_its_own_committed_item() {
    let ours = serde_json::to_string(&item()).unwrap();
    let same = ours.clone();
    let failed = mock!(aws_sdk_dynamodb::Client::update_item).then_error(move || {
        let old =
            [("body".to_string(), AttributeValue::S(same.clone())), ("v".to_string(), AttributeValue::N("1".into()))];
        UpdateItemError::ConditionalCheckFailedException(
            ConditionalCheckFailedException::builder().set_item(Some(old.into_iter().collect())).build(),
        )
    });
    let client = mock_client!(aws_sdk_dynamodb, RuleMode::MatchAny, [&failed]);
    let store = DynamoStore::new(client, "t");
    let mut tx = Transaction::new(vec![Write::Put { item: item(), cond: Cond::NotExists }]);
    assert!(matches!(store.submit(&tx).await, Err(StoreError::Conflict { index: 0 })));
    tx.resubmitted = true;
    store.submit(&tx).await.unwrap();
}
