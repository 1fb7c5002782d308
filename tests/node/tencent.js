// One BankCardOCR call with tencentcloud-sdk-nodejs-ocr against the gateway.
// usage: node tencent.js ENDPOINT SECRET_ID SECRET_KEY SIGN_METHOD REQ_METHOD IMAGE_PATH
//   SIGN_METHOD: TC3-HMAC-SHA256 | HmacSHA1 | HmacSHA256; REQ_METHOD: POST | GET
// Prints one JSON line: {"answer": <data.Response as resolved>} or {"error", "name", "message", "requestId", "httpCode"}.
"use strict";
const fs = require("fs");
const { ocr } = require("tencentcloud-sdk-nodejs-ocr");

const [endpoint, secretId, secretKey, signMethod, reqMethod, imagePath] = process.argv.slice(2);
const client = new ocr.v20181119.Client({
  credential: { secretId, secretKey },
  region: "ap-guangzhou",
  profile: {
    signMethod,
    // endpoint is host[:port] only, and protocol a URL prefix with "://" (the SDK concatenates them).
    // For TC3 the SDK signs Host without the port and takes the scope's service from the
    // endpoint up to its first dot: "127" here.
    httpProfile: { endpoint, protocol: "http://", reqMethod },
  },
});
client
  .BankCardOCR({ ImageBase64: fs.readFileSync(imagePath).toString("base64") })
  .then((answer) => console.log(JSON.stringify({ answer })))
  .catch((err) =>
    console.log(
      JSON.stringify({ error: err.code, name: err.constructor.name, message: err.message, requestId: err.requestId, httpCode: err.httpCode }),
    ),
  );
