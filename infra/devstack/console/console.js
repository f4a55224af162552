// The local stack's console. Reads /console/state every two seconds; stops and starts functions
// and sets faults through the control port; places and follows orders through the API itself,
// with a demo consumer's token, as any client does. Every text from a server is put in the page
// as text (textContent), never as markup.
"use strict";

const REFRESH_MS = 2000;
// The browser opens at most six connections to one host: four long polls leave two for placing
// orders. The API holds at most four waits per caller too (a fifth is 429).
const MAX_FOLLOWED = 4;
const DECIDED = new Set(["VALIDATED", "REJECTED"]);
const FLOW = [
  { title: "Intake", items: [["fn", "OrderApiFunction", "POST /orders"], ["fn", "OrderReaderFunction", "GET /orders/{id}"]] },
  { title: "Outbox", items: [["box", "store", "Orders + outbox", "the order and its OrderCreated in one transaction"],
    ["fn", "OutboxRelayFunction", "outbox stream to the bus"], ["fn", "DecisionTimerFunction", "each order's deadline"],
    ["q", "OutboxRelayFailures"]] },
  { title: "Bus", items: [["box", "bus", "OrdersBus", "rules to the queues"], ["q", "EventDeliveryFailures"]] },
  { title: "Validation", items: [["q", "ConsumerValidationQueue"], ["fn", "ConsumerValidatorFunction", "may the consumer order?"],
    ["q", "RestaurantValidationQueue"], ["fn", "RestaurantValidatorFunction", "are the details right?"]] },
  { title: "Decision", items: [["q", "OrderRepliesQueue"], ["q", "DecisionDeadlineQueue"],
    ["fn", "OrderRepliesFunction", "replies through the state machine"]] },
  { title: "Outcome", items: [["q", "OutcomeNotificationsQueue"], ["fn", "OrderNotifierFunction", "signed callbacks"]] },
];
const REPLICA = [
  { title: "Owners", items: [["fn", "ConsumerApiFunction", "PUT /consumers/{id}"], ["fn", "RestaurantApiFunction", "PUT /restaurants/{id}"]] },
  { title: "Bus", items: [["box", "bus", "OrdersBus", "ConsumerUpdated, RestaurantUpdated"]] },
  { title: "Replica", items: [["q", "ReplicaUpdatesQueue"], ["fn", "ReplicaUpdaterFunction", "applied if newer"],
    ["box", "store", "Replicas", "read by order-api at intake"]] },
];

const $ = (id) => document.getElementById(id);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "class") node.className = value;
    else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
    else node.setAttribute(name, value);
  }
  for (const child of children) node.append(child instanceof Node ? child : String(child));
  return node;
}

async function call(path, options = {}) {
  const answer = await fetch(path, options);
  const body = answer.headers.get("Content-Type")?.includes("json") ? await answer.json() : await answer.text();
  if (!answer.ok) throw new Error(body?.message || body?.detail || `${answer.status} ${answer.statusText}`);
  return body;
}

const post = (path, body) => call(path, {
  method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body ?? {}),
});

// -- the flow ------------------------------------------------------------------------------

const seconds = (s) => (s == null ? "–" : s < 60 ? `${s.toFixed(1)} s` : `${Math.floor(s / 60)} min ${Math.round(s % 60)} s`);

function functionCard(fn, description) {
  const button = element("button", { type: "button", "data-action": fn.running ? "stop" : "start",
    onclick: () => toggle(fn) }, fn.running ? "Stop" : "Start");
  return element("div", { class: "card function", "data-function": fn.logicalId, "data-running": String(fn.running) },
    element("div", { class: "name" }, fn.name, button),
    element("div", { class: "quiet" }, description ?? ""),
    element("div", { class: "figures" },
      `${fn.running ? "running" : "stopped"} · ${fn.invocations}/min · ${fn.errors} errors · ${fn.throttles} throttled`));
}

function queueCard(queue, queues) {
  const dlq = queues.find((q) => q.logicalId === queue.deadLetterQueue);
  const waiting = queue.visible ?? 0;
  const card = element("div", {
    class: `card queue${queue.isDeadLetterQueue ? " dead-letters" : ""}${!queue.isDeadLetterQueue && waiting > 0 ? " backlog" : ""}`,
    "data-queue": queue.logicalId, "data-depth": String(waiting), "data-in-flight": String(queue.inFlight ?? 0),
  },
  element("div", { class: "name" }, queue.logicalId),
  element("div", { class: "figures" },
    `${waiting} waiting · ${queue.inFlight ?? 0} in flight${queue.delayed ? ` · ${queue.delayed} delayed` : ""} · oldest ${seconds(queue.oldestAgeSeconds)}`));
  if (dlq) {
    card.append(element("div", { class: dlq.visible ? "error" : "quiet", "data-dead-letters": dlq.logicalId },
      `dead letters (${dlq.logicalId}): ${dlq.visible ?? 0}`));
  }
  return card;
}

function drawFlow(container, stages, state, shown) {
  const functions = new Map(state.functions.map((f) => [f.logicalId, f]));
  const queues = new Map(state.queues.map((q) => [q.logicalId, q]));
  const nodes = [];
  stages.forEach((stage, i) => {
    if (i > 0) nodes.push(element("div", { class: "arrow" }, "→"));
    const column = element("div", { class: "stage" }, element("div", { class: "title" }, stage.title));
    for (const [kind, id, ...rest] of stage.items) {
      if (kind === "fn" && functions.has(id)) column.append(functionCard(functions.get(id), rest[0]));
      else if (kind === "q" && queues.has(id)) column.append(queueCard(queues.get(id), state.queues));
      else if (kind === "box") column.append(element("div", { class: `card ${id}` },
        element("div", { class: "name" }, rest[0]), element("div", { class: "quiet" }, rest[1])));
      shown.add(id);
    }
    nodes.push(column);
  });
  container.replaceChildren(...nodes);
}

function drawState(state) {
  const shown = new Set();
  drawFlow($("flow"), FLOW, state, shown);
  drawFlow($("replica"), REPLICA, state, shown);
  // Whatever the template has that the picture does not place, so that nothing is hidden.
  const others = {
    title: "Also in the template",
    items: [...state.functions.filter((f) => !shown.has(f.logicalId)).map((f) => ["fn", f.logicalId, ""]),
      ...state.queues.filter((q) => !shown.has(q.logicalId) && !state.queues.some((o) => o.deadLetterQueue === q.logicalId))
        .map((q) => ["q", q.logicalId])],
  };
  drawFlow($("others"), others.items.length ? [others] : [], state, shown);
  drawCharts(state.metrics);
}

async function toggle(fn) {
  try {
    await post(`/functions/${encodeURIComponent(fn.logicalId)}/${fn.running ? "stop" : "start"}`);
  } catch (e) {
    showError(`${fn.name}: ${e.message}`);
  }
  await refresh();
}

// -- charts --------------------------------------------------------------------------------

const charts = {};

function chart(id, title, series, data) {
  const container = $(id);
  const width = Math.max(320, container.clientWidth || 480);
  if (!window.uPlot) {
    container.textContent = "the chart library is missing: `make run` installs it (npm ci in infra/devstack/console)";
    return;
  }
  if (!charts[id]) {
    charts[id] = new uPlot({
      title, width, height: 180,
      scales: { x: { time: true } },
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 2, points: { show: true, size: 4 } }))],
      axes: [{}, { size: 50 }],
    }, data, container);
  } else {
    charts[id].setData(data);
  }
}

function drawCharts(metrics) {
  chart("chart-rate", "orders per second", [["accepted", "#2e90fa"], ["decided", "#12b76a"]],
    [metrics.at, metrics.acceptedPerSecond, metrics.decidedPerSecond]);
  chart("chart-time", "time to outcome, ms", [["p50", "#7a5af8"], ["p99", "#f04438"]],
    [metrics.at, metrics.timeToOutcomeP50, metrics.timeToOutcomeP99]);
}

// -- orders, through the API ---------------------------------------------------------------

let catalog = null;
const tokens = new Map(); // consumerId -> its token
const orders = new Map(); // orderId -> {row, consumerId, status, history, etag}
const toFollow = [];
let following = 0;

async function tokenOf(consumerId) {
  if (!tokens.has(consumerId)) tokens.set(consumerId, (await post("/console/token", { consumerId })).token);
  return tokens.get(consumerId);
}

function showError(message) {
  const node = $("orders-error");
  node.textContent = message;
  node.hidden = !message;
}

async function placeOrder() {
  const consumerId = $("consumer").value;
  const body = {
    consumerId, restaurantId: $("restaurant").value,
    lineItems: [{ menuItemId: $("item").value, quantity: Number($("quantity").value) }],
  };
  const answer = await fetch(`${catalog.api}/orders`, {
    method: "POST",
    headers: { Authorization: `Bearer ${await tokenOf(consumerId)}`, "Content-Type": "application/json",
      "Idempotency-Key": crypto.randomUUID() },
    body: JSON.stringify(body),
  });
  const placed = await answer.json().catch(() => ({}));
  if (answer.status !== 202 && answer.status !== 201 && answer.status !== 200) {
    // problem+json: the API says what is wrong and where.
    const fields = (placed.errors ?? []).map((e) => `${e.field ?? e.path ?? ""} ${e.message ?? ""}`.trim()).join("; ");
    throw new Error(`${answer.status}: ${placed.title ?? ""} ${placed.detail ?? ""} ${fields}`.trim());
  }
  track(placed, consumerId, answer.headers.get("ETag"));
}

function track(order, consumerId, etag) {
  const row = element("tr", { "data-order": order.orderId });
  $("orders").tBodies[0].prepend(row);
  const entry = { row, consumerId, etag, status: order.status, history: order.history ?? [], placedAt: Date.now() };
  orders.set(order.orderId, entry);
  drawOrder(order.orderId, entry);
  toFollow.push(order.orderId);
  followNext();
}

function drawOrder(orderId, entry) {
  const history = entry.history.length ? entry.history : [{ status: entry.status, at: null }];
  const start = history[0].at ? Date.parse(history[0].at) : null;
  const way = history.map((change) => {
    const after = start != null && change.at ? ` +${Math.round(Date.parse(change.at) - start)} ms` : "";
    return `${change.status}${after}`;
  }).join(" → ");
  const reasons = entry.rejectionReasons?.length ? ` (${entry.rejectionReasons.join(", ")})` : "";
  entry.row.replaceChildren(
    element("td", { class: "id", title: orderId }, orderId.slice(-12)),
    element("td", {}, entry.consumerId),
    element("td", { class: "status", "data-status": entry.status }, entry.status),
    element("td", {}, way + reasons + (entry.error ? ` · ${entry.error}` : "")));
}

// Long polls (Prefer: wait=20 with If-None-Match), at most MAX_FOLLOWED at once; the rest wait
// their turn, read with a plain GET two at a time at each refresh (catchUp) meanwhile.
function followNext() {
  while (following < MAX_FOLLOWED && toFollow.length) {
    const orderId = toFollow.shift();
    following += 1;
    follow(orderId).finally(() => { following -= 1; followNext(); });
  }
}

async function follow(orderId) {
  const entry = orders.get(orderId);
  while (!DECIDED.has(entry.status)) {
    // Held until the order moves past the version shown (If-None-Match); the first read takes
    // that version at once (without one, a wait would be held until the order is decided).
    const headers = { Authorization: `Bearer ${await tokenOf(entry.consumerId)}` };
    if (entry.etag) Object.assign(headers, { Prefer: "wait=20", "If-None-Match": entry.etag });
    let answer;
    try {
      answer = await fetch(`${catalog.api}/orders/${encodeURIComponent(orderId)}`, { headers });
    } catch (e) {
      entry.error = `the API did not answer (${e.message})`;
      drawOrder(orderId, entry);
      await sleep(2000);
      continue;
    }
    if (answer.status === 304) continue;
    if (answer.status === 429 || answer.status === 503) {
      await sleep(1000 * Math.min(20, Number(answer.headers.get("Retry-After")) || 1));
      continue;
    }
    if (!answer.ok) {
      entry.error = `${answer.status} on GET`;
      drawOrder(orderId, entry);
      await sleep(2000);
      continue;
    }
    const order = await answer.json();
    Object.assign(entry, { etag: answer.headers.get("ETag"), status: order.status, history: order.history ?? [],
      rejectionReasons: order.rejectionReasons, error: undefined });
    drawOrder(orderId, entry);
  }
}

async function catchUp() {
  for (let i = 0; i < Math.min(2, toFollow.length); i += 1) {
    const orderId = toFollow.shift();
    toFollow.push(orderId);
    const entry = orders.get(orderId);
    const answer = await fetch(`${catalog.api}/orders/${encodeURIComponent(orderId)}`,
      { headers: { Authorization: `Bearer ${await tokenOf(entry.consumerId)}` } }).catch(() => null);
    if (!answer?.ok) continue;
    const order = await answer.json();
    Object.assign(entry, { etag: answer.headers.get("ETag"), status: order.status, history: order.history ?? [],
      rejectionReasons: order.rejectionReasons });
    drawOrder(orderId, entry);
    const waiting = toFollow.indexOf(orderId); // a follower may have taken it meanwhile
    if (DECIDED.has(entry.status) && waiting >= 0) toFollow.splice(waiting, 1);
  }
}

async function placeLoad() {
  const count = Math.min(500, Math.max(1, Number($("load-count").value)));
  const rate = Math.min(20, Math.max(0.1, Number($("load-rate").value)));
  const button = $("load-start");
  button.disabled = true;
  let placed = 0;
  let failed = 0;
  const started = performance.now();
  for (let i = 0; i < count; i += 1) {
    await sleep(Math.max(0, started + (i * 1000) / rate - performance.now()));
    placeOrder().then(() => { placed += 1; }, (e) => { failed += 1; showError(e.message); })
      .finally(() => { $("load-progress").textContent = `${placed} placed, ${failed} refused, of ${count}`; });
  }
  button.disabled = false;
}

// -- faults --------------------------------------------------------------------------------

const SHARES = ["crashes", "timeouts", "sqsDuplicates", "sqsReorder", "eventDuplicates"];
let faults = {}; // as devstack last answered: what the form changes is merged into it

async function loadFaults() {
  faults = await call("/faults");
  const form = $("faults");
  const delivery = faults.delivery ?? {};
  for (const name of SHARES) form.elements[name].value = delivery[name] ?? faults[name] ?? 0;
  form.elements.putEvents.value = faults.putEvents?.failureRate ?? 0;
  form.elements.dynamodbThrottle.value = faults.errors?.dynamodb?.throttle ?? 0;
  form.elements.transactionHoldMs.value = faults.transactionHoldMs ?? 5;
  const counts = Object.entries({ ...(faults.counts ?? {}), ...(delivery.counts ?? {}) })
    .map(([name, count]) => `${name}: ${count}`).join(" · ");
  $("faults-counts").textContent = counts ? `injected so far: ${counts}` : "none injected so far";
}

// Sent as typed: devstack refuses a share outside 0 to 1 and says why. Settings the form does
// not show (other services' errors, the PutEvents source) are sent back as they were; "All off"
// turns every share off, those included.
async function applyFaults(off) {
  const form = $("faults");
  const value = (name) => (off ? 0 : Number(form.elements[name].value));
  const settings = Object.fromEntries(SHARES.map((name) => [name, value(name)]));
  settings.putEvents = { failureRate: value("putEvents"), source: off ? null : faults.putEvents?.source ?? null };
  const errors = off ? {} : structuredClone(faults.errors ?? {});
  const throttle = value("dynamodbThrottle");
  if (throttle) errors.dynamodb = { ...(errors.dynamodb ?? {}), throttle };
  else if (errors.dynamodb) delete errors.dynamodb.throttle;
  if (errors.dynamodb && !Object.keys(errors.dynamodb).length) delete errors.dynamodb;
  settings.errors = errors;
  if (!off) settings.transactionHoldMs = value("transactionHoldMs");
  try {
    await post("/faults", settings);
  } catch (e) {
    $("faults-counts").textContent = `refused: ${e.message}`;
    return;
  }
  await loadFaults();
}

// -- dead letters --------------------------------------------------------------------------

async function listDeadLetters() {
  const container = $("dead-letters");
  container.textContent = "reading…";
  let answer;
  try {
    answer = await call("/console/dead-letters");
  } catch (e) {
    container.textContent = `could not list them: ${e.message}`;
    return;
  }
  container.replaceChildren(...answer.queues.map((queue) => {
    const box = element("div", { class: "dead-letter-queue", "data-dead-letter-queue": queue.queue },
      element("div", { class: "name" }, `${queue.queue}: ${queue.depth}`));
    for (const letter of queue.messages) {
      box.append(element("div", { class: "quiet" },
        `${letter.eventType ?? "message"}${letter.orderId ? ` of ${letter.orderId}` : ""}: ${letter.reason}` +
        ` (${letter.deadLetteredAt ? `dead-lettered ${letter.deadLetteredAt}, ` : ""}received ${letter.receiveCount ?? "?"} times)`));
    }
    if (queue.depth > 0) {
      box.append(element("button", { type: "button", onclick: () => redrive(queue.queue) }, "Redrive"));
    }
    return box;
  }));
}

async function redrive(queue) {
  try {
    const answer = await post(`/console/dead-letters/${encodeURIComponent(queue)}/redrive`);
    showError("");
    // orderctl answers how many went back to each queue, and what it left, with why.
    const moved = Object.values(answer.moved ?? {}).reduce((sum, count) => sum + count, 0);
    $("dead-letters").prepend(element("p", {}, `${queue}: ${moved} moved back, ${answer.left?.length ?? 0} left`));
  } catch (e) {
    $("dead-letters").prepend(element("p", { class: "error" }, `${queue}: ${e.message}`));
  }
  setTimeout(listDeadLetters, 1500);
}

// -- start ---------------------------------------------------------------------------------

async function refresh() {
  try {
    drawState(await call("/console/state"));
    $("connection").textContent = `the stack at ${location.host} · ${new Date().toLocaleTimeString()}`;
    $("connection").className = "quiet";
  } catch (e) {
    $("connection").textContent = `the stack does not answer: ${e.message}`;
    $("connection").className = "error";
  }
}

function fillCatalog() {
  const options = (select, entries) => select.replaceChildren(...entries.map(([value, label]) => element("option", { value }, label)));
  options($("consumer"), catalog.consumers.map((c) => [c.consumerId, `${c.consumerId} (${c.name}, ${c.status})`]));
  options($("restaurant"), catalog.restaurants.map((r) => [r.restaurantId, `${r.restaurantId} (${r.name})`]));
  const menu = () => options($("item"), (catalog.restaurants.find((r) => r.restaurantId === $("restaurant").value)?.menu ?? [])
    .map((i) => [i.menuItemId, `${i.menuItemId} (${i.name})`]));
  $("restaurant").addEventListener("change", menu);
  menu();
}

async function start() {
  catalog = await call("/console/catalog");
  fillCatalog();
  $("place").addEventListener("submit", (event) => {
    event.preventDefault();
    placeOrder().then(() => showError(""), (e) => showError(e.message.includes("Failed to fetch")
      ? `the API at ${catalog.api} refused this page (its CORS allows other origins: start it with CorsAllowedOrigins=${location.origin})`
      : e.message));
  });
  $("load").addEventListener("submit", (event) => { event.preventDefault(); placeLoad(); });
  $("faults").addEventListener("submit", (event) => { event.preventDefault(); applyFaults(false); });
  $("faults-off").addEventListener("click", () => applyFaults(true));
  $("dead-letters-list").addEventListener("click", listDeadLetters);
  await Promise.all([refresh(), loadFaults().catch((e) => { $("faults-counts").textContent = e.message; })]);
  setInterval(() => { refresh(); catchUp(); }, REFRESH_MS);
}

start().catch((e) => { $("connection").textContent = `the console could not start: ${e.message}`; });
