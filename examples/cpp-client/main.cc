// qianmian-client-example ENDPOINT [CUSTOMER_ID]: asks a qianmian server for its health and, with
// a customer id, for that customer's home page (SPEC §5), with retries on `overloaded`.
// Exit status: 0 when every call succeeded, 1 otherwise.
#include <cstdio>
#include <string>

#include "qianmian/client/client.h"
#include "qianmian/core/version.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s ENDPOINT [CUSTOMER_ID]\n", argv[0]);
    return 1;
  }
  qm::client::ClientOptions options;
  options.endpoint = argv[1];
  options.timeout_ms = 5000;
  options.retries = 2;  // `overloaded` is sent again after a jittered backoff
  auto client = qm::client::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "connect: %s\n", client.status().ToString().c_str());
    return 1;
  }
  std::printf("client library %s\n", QIANMIAN_VERSION);

  // Any op as JSON: health.
  auto health = (*client)->Call("health", "");
  if (!health.ok() || !health->ok) {
    std::fprintf(stderr, "health: %s\n",
                 health.ok() ? health->error_message.c_str() : health.status().ToString().c_str());
    return 1;
  }
  std::printf("health %s\n", health->json.c_str());
  if (argc < 3) return 0;

  // A typed recommend call.
  qm::client::RecommendRequest request;
  request.customer_id = argv[2];
  request.channel = "app_home";
  request.count = 5;
  auto page = (*client)->Recommend(request);
  if (!page.ok()) {
    std::fprintf(stderr, "recommend: %s\n", page.status().ToString().c_str());
    return 1;
  }
  if (!page->ok) {
    std::fprintf(stderr, "recommend: %s: %s\n", page->error_code.c_str(), page->error_message.c_str());
    return 1;
  }
  std::printf("recommend %s (model %s, %lld us):\n", page->request_id.c_str(), page->model_version.c_str(),
              static_cast<long long>(page->took_us));
  for (const auto& item : page->items) {
    std::printf("  %s %s %.4f\n", item.item_id.c_str(), item.kind.c_str(), item.score);
  }
  return 0;
}
