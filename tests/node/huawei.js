// One bank card read through @huaweicloud/huaweicloud-sdk-core against the gateway.
// npm has no @huaweicloud/huaweicloud-sdk-ocr, so MiniOcrClient passes hcClient.sendRequest the
// options the generated OcrClient.recognizeBankcard builds (clients/README.md §11.2).
// usage: node huawei.js BASE_URL AK SK PROJECT_ID IMAGE_PATH
// Prints one JSON line: {"answer": <what the promise resolved with>} or
// {"error", "name", "httpStatusCode", "errorCode", "errorMsg", "requestId"}.
"use strict";
const fs = require("fs");
const { BasicCredentials } = require("@huaweicloud/huaweicloud-sdk-core");
const { ClientBuilder } = require("@huaweicloud/huaweicloud-sdk-core/ClientBuilder");

class MiniOcrClient {
  constructor(hcClient) {
    this.hcClient = hcClient;
  }

  recognizeBankcard(body) {
    return this.hcClient.sendRequest({
      method: "POST",
      url: "/v2/{project_id}/ocr/bankcard", // core fills {project_id} from the credential
      contentType: "application/json;charset=UTF-8",
      queryParams: {},
      pathParams: {},
      headers: { "Content-Type": "application/json;charset=UTF-8" },
      data: body,
      responseHeaders: [""],
    });
  }
}

const [base, ak, sk, projectId, imagePath] = process.argv.slice(2);
const client = new ClientBuilder((hc) => new MiniOcrClient(hc))
  .withCredential(new BasicCredentials().withAk(ak).withSk(sk).withProjectId(projectId))
  .withEndpoint(base) // a full URL, scheme included
  .build();
client
  .recognizeBankcard({ image: fs.readFileSync(imagePath).toString("base64") })
  .then((answer) => console.log(JSON.stringify({ answer })))
  .catch((err) => {
    const { httpStatusCode, errorCode, errorMsg, requestId } = err;
    console.log(JSON.stringify({ error: true, name: err.constructor.name, httpStatusCode, errorCode, errorMsg, requestId }));
  });
