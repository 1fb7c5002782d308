// One RecognizeBankCard call with @alicloud/ocr-api20210707 against the gateway.
// usage: node alibaba.js ENDPOINT ACCESS_KEY_ID SECRET (--body IMAGE_PATH | --url URL)
// Prints one JSON line: {"statusCode", "requestId", "data"} or {"error", "statusCode", "name", "requestId"}.
"use strict";
const fs = require("fs");
const Ocr = require("@alicloud/ocr-api20210707");
const { $OpenApiUtil } = require("@alicloud/openapi-core");

const [endpoint, accessKeyId, accessKeySecret, mode, source] = process.argv.slice(2);
// endpoint is host[:port] only: with a scheme the SDK builds http://http//...
const client = new Ocr.default(new $OpenApiUtil.Config({ accessKeyId, accessKeySecret, endpoint, protocol: "http" }));
const request =
  mode === "--body"
    ? new Ocr.RecognizeBankCardRequest({ body: fs.createReadStream(source) }) // streamed: chunked, no Content-Length
    : new Ocr.RecognizeBankCardRequest({ url: source });
client
  .recognizeBankCard(request)
  .then((resp) =>
    console.log(JSON.stringify({ statusCode: resp.statusCode, requestId: resp.body.requestId, data: JSON.parse(resp.body.data) })),
  )
  .catch((err) =>
    console.log(JSON.stringify({ error: err.code, statusCode: err.statusCode, name: err.name, requestId: err.requestId })),
  );
