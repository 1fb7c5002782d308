// One bank card read with baidu-aip-sdk, redirected to the gateway by the SDK's public hook.
// usage: node baidu.js BASE_URL APP_ID API_KEY SECRET_KEY IMAGE_PATH [OPTIONS_JSON]
// Prints one JSON line: {"answer": <what the promise resolved with>} or {"rejected": ...}.
"use strict";
const fs = require("fs");
const { ocr: AipOcr, HttpClient } = require("baidu-aip-sdk");

const [base, appId, apiKey, secretKey, imagePath, options] = process.argv.slice(2);
// Set before the client exists: its constructor already asks for a token.
HttpClient.setRequestInterceptor((o) => {
  o.url = o.url.replace(/^https:\/\/aip\.baidubce\.com/, base);
  return o;
});
const client = new AipOcr(appId, apiKey, secretKey);
const image = fs.readFileSync(imagePath).toString("base64"); // the caller passes base64, not bytes
client
  .bankcard(image, JSON.parse(options || "{}"))
  .then((answer) => console.log(JSON.stringify({ answer })))
  .catch((err) => console.log(JSON.stringify({ rejected: String((err && err.errorType) || err) })));
