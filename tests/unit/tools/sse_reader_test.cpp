// Tests of SseReader (src/net/sse_reader.h): the WHATWG event-stream rules the
// chat stream parser and the MCP Streamable HTTP transport rely on, with the
// bytes split anywhere. (In tests/unit/tools/ because there is no
// tests/unit/net/ yet; the MCP transport is its newest user.)
#include "net/sse_reader.h"

#include <gtest/gtest.h>

#include <string>
#include <utility>
#include <vector>

namespace continuum {
namespace {

struct SseRun {
  std::vector<SseEvent> events;
  Status feed_status;    // the first failed feed(), ok if none
  Status finish_status;
};

SseRun read_chunks(const std::vector<std::string>& chunks, std::size_t line_bytes_max = 1 << 20) {
  SseRun run;
  SseReader reader("mcp stream", line_bytes_max, [&](SseEvent event) {
    run.events.push_back(std::move(event));
    return Status::ok();
  });
  for (const auto& chunk : chunks) {
    Status status = reader.feed(chunk);
    if (!status.is_ok() && run.feed_status.is_ok()) run.feed_status = status;
  }
  run.finish_status = reader.finish();
  return run;
}

SseRun read_all(const std::string& text, std::size_t line_bytes_max = 1 << 20) {
  return read_chunks({text}, line_bytes_max);
}

// "name|data|id" per event, for compact comparisons.
std::vector<std::string> summary(const SseRun& run) {
  std::vector<std::string> out;
  for (const auto& event : run.events) out.push_back(event.name + "|" + event.data + "|" + event.id);
  return out;
}

using Events = std::vector<std::string>;

// An MCP Streamable HTTP response: a priming event with an id and no data, a
// progress notification, a keep-alive comment, the result split over two data
// lines, multi-byte UTF-8 in the text.
const std::string kMcpStream =
    "id: prime-0\n"
    "data\n"  // a data field without a colon: an empty data line
    "\n"
    "event: message\n"
    "id: 1\n"
    "data: {\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":3,\"progress\":1}}\n"
    "\n"
    ": keep-alive\n"
    "\n"
    "event: message\r\n"
    "id: 2\r\n"
    "retry: 3000\r\n"
    "data: {\"jsonrpc\":\"2.0\",\"id\":3,\r\n"
    "data: \"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Grüße, 世界 🌍\"}]}}\r\n"
    "\r\n";

const Events kMcpStreamEvents = {
    "||prime-0",
    "message|{\"jsonrpc\":\"2.0\",\"method\":\"notifications/progress\",\"params\":{\"progressToken\":3,\"progress\":1}}|1",
    "message|{\"jsonrpc\":\"2.0\",\"id\":3,\n\"result\":{\"content\":[{\"type\":\"text\",\"text\":\"Grüße, 世界 🌍\"}]}}|2",
};

TEST(SseReaderTest, ReadsEventsWithNamesIdsAndMultiLineData) {
  SseRun run = read_all(kMcpStream);
  EXPECT_TRUE(run.feed_status.is_ok()) << run.feed_status.to_string();
  EXPECT_TRUE(run.finish_status.is_ok()) << run.finish_status.to_string();
  EXPECT_EQ(summary(run), kMcpStreamEvents);
}

TEST(SseReaderTest, SameEventsForEveryTwoWaySplit) {
  // Every split point: inside a line, between "\r" and "\n", inside a UTF-8 sequence.
  for (std::size_t cut = 0; cut <= kMcpStream.size(); ++cut) {
    SseRun run = read_chunks({kMcpStream.substr(0, cut), kMcpStream.substr(cut)});
    ASSERT_TRUE(run.feed_status.is_ok()) << "cut at " << cut;
    ASSERT_EQ(summary(run), kMcpStreamEvents) << "cut at " << cut;
  }
}

TEST(SseReaderTest, SameEventsFedOneByteAtATime) {
  std::vector<std::string> bytes;
  for (char c : kMcpStream) bytes.emplace_back(1, c);
  EXPECT_EQ(summary(read_chunks(bytes)), kMcpStreamEvents);
}

TEST(SseReaderTest, CrLfSplitAcrossFeedsIsOneLineEnd) {
  // If the "\n" after a chunk-final "\r" counted as a second (blank) line, "a"
  // would be dispatched alone and "b" would become a second event.
  SseRun run = read_chunks({"data: a\r", "\ndata: b\r", "\n\r", "\n"});
  EXPECT_EQ(summary(run), (Events{"|a\nb|"}));
}

TEST(SseReaderTest, AcceptsLfCrLfAndLoneCrLineEnds) {
  EXPECT_EQ(summary(read_all("data: lf\n\n")), (Events{"|lf|"}));
  EXPECT_EQ(summary(read_all("data: crlf\r\n\r\n")), (Events{"|crlf|"}));
  EXPECT_EQ(summary(read_all("data: cr\r\rdata: next\r\r")), (Events{"|cr|", "|next|"}));
  EXPECT_EQ(summary(read_all("data: a\rdata: b\r\ndata: c\n\n")), (Events{"|a\nb\nc|"}));
}

TEST(SseReaderTest, FieldValueRules) {
  // One leading space is dropped, a second one is kept; no space is fine; a
  // colon later in the value is part of it.
  EXPECT_EQ(summary(read_all("data:  two spaces\n\n")), (Events{"| two spaces|"}));
  EXPECT_EQ(summary(read_all("data:tight\n\n")), (Events{"|tight|"}));
  EXPECT_EQ(summary(read_all("data: a: b\n\n")), (Events{"|a: b|"}));
  // An empty data line joins as an empty line.
  EXPECT_EQ(summary(read_all("data: a\ndata:\ndata: b\n\n")), (Events{"|a\n\nb|"}));
  // Unknown fields, retry and comments carry nothing.
  EXPECT_EQ(summary(read_all(": hello\nfoo: bar\nretry: 10\ndata: x\n\n")), (Events{"|x|"}));
  // Field names are case-sensitive.
  EXPECT_EQ(summary(read_all("Data: x\n\n")), Events{});
}

TEST(SseReaderTest, EventsWithoutDataAreNotDispatched) {
  EXPECT_EQ(summary(read_all("event: ping\nid: 9\n\n: comment\n\n\n\n")), Events{});
}

TEST(SseReaderTest, NameAndIdDoNotLeakIntoTheNextEvent) {
  EXPECT_EQ(summary(read_all("event: custom\nid: 5\ndata: one\n\ndata: two\n\n")),
            (Events{"custom|one|5", "|two|"}));
  // A data-less event's name and id are dropped with it.
  EXPECT_EQ(summary(read_all("event: custom\nid: 5\n\ndata: two\n\n")), (Events{"|two|"}));
}

TEST(SseReaderTest, RemembersTheLastEventIdAndRetryForResuming) {
  SseReader reader("mcp stream", 1024, [](SseEvent) { return Status::ok(); });
  EXPECT_EQ(reader.last_event_id(), "");
  EXPECT_EQ(reader.retry_ms(), -1);
  // A priming event (an id, no data) is not dispatched but is where a resumed stream starts.
  ASSERT_TRUE(reader.feed("id: prime-0\nretry: 2500\ndata\n\nid: 1\n\n").is_ok());
  EXPECT_EQ(reader.last_event_id(), "1");
  EXPECT_EQ(reader.retry_ms(), 2500);
  // Invalid values are ignored: an id with a NUL, a retry that is not all digits (or absurdly long).
  ASSERT_TRUE(reader.feed(std::string("id: bad") + '\0' + "id\nretry: 10s\nretry: -5\nretry: 1234567890\nretry:\n\n").is_ok());
  EXPECT_EQ(reader.last_event_id(), "1");
  EXPECT_EQ(reader.retry_ms(), 2500);
  // An empty id resets it.
  ASSERT_TRUE(reader.feed("id\ndata: x\n\n").is_ok());
  EXPECT_EQ(reader.last_event_id(), "");
}

TEST(SseReaderTest, FinishDispatchesALastEventWithoutABlankLine) {
  EXPECT_EQ(summary(read_all("data: complete\n\ndata: tail\n")), (Events{"|complete|", "|tail|"}));
  // Even the last line may be unterminated.
  EXPECT_EQ(summary(read_all("data: complete\n\nevent: e\ndata: tail")), (Events{"|complete|", "e|tail|"}));
  // A stream ending in "\r" does not leave anything behind.
  EXPECT_EQ(summary(read_all("data: x\r")), (Events{"|x|"}));
  EXPECT_EQ(summary(read_all("")), Events{});
}

TEST(SseReaderTest, LineLimitIsInclusiveAndErrorsAreSticky) {
  // "data: 1234" is 10 bytes: exactly the limit is fine.
  SseRun fits = read_all("data: 1234\n\n", 10);
  EXPECT_TRUE(fits.feed_status.is_ok());
  EXPECT_EQ(summary(fits), (Events{"|1234|"}));

  std::vector<SseEvent> events;
  SseReader reader("mcp stream", 10, [&](SseEvent event) {
    events.push_back(std::move(event));
    return Status::ok();
  });
  EXPECT_TRUE(reader.feed("data: ok\n\ndata: 12").is_ok());
  Status status = reader.feed("345\n\n");  // the line grows past 10 bytes across feeds
  EXPECT_EQ(status.code(), Code::kPayloadTooLarge);
  EXPECT_EQ(status.message(), "mcp stream line exceeds the limit of 10");
  // Sticky: later bytes, even valid ones, get the same error and no events.
  EXPECT_EQ(reader.feed("data: b\n\n").code(), Code::kPayloadTooLarge);
  EXPECT_EQ(reader.finish().code(), Code::kPayloadTooLarge);
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "ok");
}

TEST(SseReaderTest, JoinedDataOverTheLimitIsRefused) {
  // Each line fits (10 bytes), the event's joined data "12345\n12345" (11) does not.
  SseRun run = read_all("data:12345\ndata:12345\n\n", 10);
  EXPECT_EQ(run.feed_status.code(), Code::kPayloadTooLarge);
  EXPECT_NE(run.feed_status.message().find("exceeds the limit of 10"), std::string::npos)
      << run.feed_status.message();
  EXPECT_TRUE(run.events.empty());
  // Exactly at the limit: "1234\n1234" is 9, "12345\n1234" is 10.
  EXPECT_EQ(summary(read_all("data:12345\ndata:1234\n\n", 10)), (Events{"|12345\n1234|"}));
}

TEST(SseReaderTest, AnUnterminatedOverlongLineFailsAtFeedTime) {
  // A server that never sends a newline must not make the reader buffer without bound.
  SseReader reader("mcp stream", 64, [](SseEvent) { return Status::ok(); });
  Status status;
  for (int i = 0; i < 100 && status.is_ok(); ++i) status = reader.feed("xxxxxxxx");
  EXPECT_EQ(status.code(), Code::kPayloadTooLarge);
}

TEST(SseReaderTest, AnEventHandlerErrorStopsTheReaderForGood) {
  int calls = 0;
  SseReader reader("mcp stream", 1024, [&](SseEvent event) {
    ++calls;
    if (event.data == "bad") return invalid_argument("bad event");
    return Status::ok();
  });
  Status status = reader.feed("data: good\n\ndata: bad\n\ndata: after\n\n");
  EXPECT_EQ(status.code(), Code::kInvalidArgument);
  EXPECT_EQ(status.message(), "bad event");
  EXPECT_EQ(calls, 2) << "the event after the failing one must not be dispatched";
  EXPECT_EQ(reader.feed("data: more\n\n").message(), "bad event");
  EXPECT_EQ(reader.finish().message(), "bad event");
  EXPECT_EQ(calls, 2);
}

TEST(SseReaderTest, AnEventHandlerErrorFromFinishIsReturned) {
  SseReader reader("mcp stream", 1024, [](SseEvent) { return invalid_argument("refused"); });
  EXPECT_TRUE(reader.feed("data: tail").is_ok());
  EXPECT_EQ(reader.finish().code(), Code::kInvalidArgument);
  EXPECT_EQ(reader.finish().code(), Code::kInvalidArgument);
}

TEST(SseReaderTest, StopInsideAHandlerIgnoresTheRestOfTheFeedAndFinish) {
  std::vector<std::string> seen;
  SseReader* self = nullptr;
  SseReader reader("mcp stream", 1024, [&](SseEvent event) {
    seen.push_back(event.data);
    if (event.data == "last") self->stop();  // e.g. the response to our request arrived
    return Status::ok();
  });
  self = &reader;
  EXPECT_TRUE(reader.feed("data: first\n\ndata: last\n\ndata: ignored\n\n").is_ok());
  EXPECT_TRUE(reader.stopped());
  EXPECT_TRUE(reader.feed("data: later\n\n").is_ok());
  EXPECT_TRUE(reader.finish().is_ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"first", "last"}));
}

TEST(SseReaderTest, StopBeforeFinishDropsAPendingEvent) {
  int calls = 0;
  SseReader reader("mcp stream", 1024, [&](SseEvent) {
    ++calls;
    return Status::ok();
  });
  EXPECT_TRUE(reader.feed("data: pending\n").is_ok());
  reader.stop();
  EXPECT_TRUE(reader.finish().is_ok());
  EXPECT_EQ(calls, 0);
}

}  // namespace
}  // namespace continuum
