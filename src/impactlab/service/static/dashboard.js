// impactlab dashboard: each page calls the service's JSON endpoints and draws with plotly.js
const $ = (id) => document.getElementById(id);
const PAGES = {};
const AUTOLOAD = new Set();
function go(){ return PAGES[document.body.dataset.page](); }
function hdrs(){const k=sessionStorage.getItem('impactlab-key');const h={'Content-Type':'application/json'};
 if(k){h['X-API-Key']=k;} return h;}
function saveKey(){sessionStorage.setItem('impactlab-key', $('key').value);}
async function api(path, body){
  const r = await fetch(path, body===undefined ? {headers:hdrs()} : {method:'POST', headers:hdrs(), body:JSON.stringify(body)});
  const j = await r.json();
  if(!r.ok){ throw new Error((j.error && j.error.message) || r.statusText); }
  return j;
}
function fmt(x, d=2){ return (x===null||x===undefined) ? '–' : Number(x).toFixed(d); }
function table(el, cols, rows){
  let h = '<table><tr>' + cols.map(c => '<th>'+c[0]+'</th>').join('') + '</tr>';
  for(const r of rows){ h += '<tr>' + cols.map(c => '<td>'+c[1](r)+'</td>').join('') + '</tr>'; }
  el.innerHTML = h + '</table>';
}
function esc(s){ return String(s).replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c])); }

// -- pretrade
PAGES['pretrade'] = async function go(){
  const f = new FormData($('order')); $('status').textContent = '';
  try{
    const r = await api('/pretrade/report', {symbol:f.get('symbol'), side:f.get('side'),
      quantity:Number(f.get('quantity')), threshold_bps:Number(f.get('threshold_bps'))});
    const p = 'prob_cost_above_' + r.threshold_bps + 'bps';
    $('summary').innerHTML = '<p>' + esc(r.model) + '. Recommended: <b id="recommended">' + esc(r.recommended) + '</b>.</p>';
    table($('strategies'), [['strategy', s => esc(s.name)], ['horizon', s => fmt(s.horizon_s/60,1)+' min'],
      ['participation', s => fmt(100*s.participation,1)+'%'], ['temporary bps', s => fmt(s.temporary_bps)],
      ['permanent bps', s => fmt(s.permanent_bps)], ['total bps', s => fmt(s.total_bps)], ['std bps', s => fmt(s.std_bps)],
      ['total $', s => fmt(s.total_currency,0)], ['P(cost > '+r.threshold_bps+' bps)', s => fmt(s[p],3)]], r.strategies);
    const c = r.cost_curve, h = c.map(x => x.horizon_s/60);
    Plotly.newPlot('curve', [
      {x:h, y:c.map(x=>x.total_bps), name:'total', mode:'lines+markers'},
      {x:h, y:c.map(x=>x.temporary_bps), name:'temporary', mode:'lines'},
      {x:h, y:c.map(x=>x.permanent_bps), name:'permanent', mode:'lines'},
      {x:h, y:c.map(x=>x.total_bps + 1.645*x.std_bps), name:'total + 1.645 sd', mode:'lines', line:{dash:'dot'}}],
      {xaxis:{title:'horizon (min)', type:'log'}, yaxis:{title:'bps of arrival value'}, margin:{t:20}});
  }catch(e){ $('status').textContent = e.message; }
}

// -- frontier
PAGES['frontier'] = async function go(){
  const f = new FormData($('order')); $('status').textContent = '';
  try{
    const r = await api('/frontier', {symbol:f.get('symbol'), side:f.get('side'), quantity:Number(f.get('quantity')),
      horizon_s:60*Number(f.get('horizon_min'))});
    Plotly.newPlot('frontier', [
      {x:r.std_bps, y:r.expected_cost_bps, mode:'lines+markers', name:'Almgren–Chriss optimal', text:r.risk_aversion.map(l=>'λ='+l.toExponential(2))},
      {x:[r.twap.std_bps], y:[r.twap.expected_cost_bps], mode:'markers', marker:{size:12, symbol:'x'}, name:'TWAP'}],
      {xaxis:{title:'standard deviation of cost (bps)'}, yaxis:{title:'expected cost (bps)'}, margin:{t:20}});
    $('points').innerHTML = '<p>' + r.risk_aversion.length + ' optimal schedules, model ' + esc(r.model_version) + '.</p>';
  }catch(e){ $('status').textContent = e.message; }
}

// -- tca
PAGES['tca'] = async function go(){
  try{
    const r = await api('/tca/recent?limit=200'); const o = r.orders;
    table($('orders'), [['order', x => esc(x.parent_order_id)], ['model', x => esc(x.model)],
      ['predicted bps', x => fmt(x.predicted_bps)], ['realised bps', x => fmt(x.realised_bps)],
      ['error bps', x => fmt(x.realised_bps - x.predicted_bps)]], o.slice().reverse());
    Plotly.newPlot('scatter', [{x:o.map(x=>x.predicted_bps), y:o.map(x=>x.realised_bps), mode:'markers',
      text:o.map(x=>x.parent_order_id), name:'orders'}], {xaxis:{title:'predicted (bps)'}, yaxis:{title:'realised (bps)'}, margin:{t:20}});
  }catch(e){ $('status').textContent = e.message; }
}
AUTOLOAD.add('tca');

// -- models
PAGES['models'] = async function go(){
  try{
    const m = await api('/models');
    const mult = (v, k) => (v.params.multipliers && v.params.multipliers[k] !== undefined) ? fmt(v.params.multipliers[k],2) : '-';
    table($('versions'), [['version', v => esc(v.version)], ['status', v => esc(v.status) + (v.status === 'pending' ? ' (awaiting approval)' : '')],
      ['created', v => new Date(v.created_ns/1e6).toISOString()], ['reason', v => esc(v.reason)], ['orders', v => v.n_obs],
      ['reference bps', v => fmt(v.reference_bps)], ['× spread', v => mult(v,'spread')], ['× transient', v => mult(v,'transient')],
      ['× sqrt', v => mult(v,'sqrt')]], m.versions);
    const pend = m.versions.filter(v => v.status === 'pending');
    const acc = m.accuracy || [];
    table($('accuracy'), [['version', a => esc(a.model_version)], ['orders', a => a.orders], ['median |log r/p|', a => fmt(a.median_abs_log_ratio)],
      ['bias bps', a => fmt(a.bias_bps)], ['90% coverage', a => a.coverage_90 === null ? '-' : fmt(100*a.coverage_90,0) + '%']], acc);
    let rows = [], alerts = [];
    for(const sym of Object.keys(m.live)){
      const d = await api('/drift?symbol=' + encodeURIComponent(sym));
      if(d.alert){ alerts.push(sym + ': ' + d.reasons.join('; ')); }
      for(const f of d.features){ rows.push(Object.assign({symbol:sym}, f)); }
      rows.push({symbol:sym, feature:'prediction error (bias)', psi:d.prediction_error.bias, ks_pvalue:d.prediction_error.ks_pvalue,
        n_reference:d.n_reference, n_current:d.n_current, alert:d.prediction_error.alert});
    }
    const held = pend.length ? '<div class="alert" id="pending">Held for approval: ' + esc(pend.map(v => v.version + ' (' + v.reason + ')').join(' | ')) +
      ' — the live version keeps pricing. ' + pend.map(v => '<button class="decide" data-v="' + esc(v.version) + '" data-act="approve">Approve ' +
      esc(v.version) + '</button> <button class="decide" data-v="' + esc(v.version) + '" data-act="reject">Reject</button>').join(' ') +
      ' (a model-admin key; or <code>impactlab models approve VERSION</code>).</div>' : '';
    $('banner').innerHTML = held + (alerts.length ? '<div class="alert" id="drift-alert">Drift alert — recalibration triggered: ' + esc(alerts.join(' | ')) + '</div>'
                                          : '<div class="ok" id="drift-ok">No drift alert.</div>');
    for(const b of document.querySelectorAll('button.decide')){
      b.onclick = async () => {
        $('status').textContent = '';
        try{ await api('/models/' + encodeURIComponent(b.dataset.v) + '/' + b.dataset.act, {}); go(); }
        catch(e){ $('status').textContent = e.message; }
      };
    }
    table($('drift'), [['symbol', r => esc(r.symbol)], ['feature', r => esc(r.feature)], ['PSI / bias', r => fmt(r.psi,3)],
      ['KS p', r => fmt(r.ks_pvalue,3)], ['training n', r => r.n_reference], ['current n', r => r.n_current], ['alert', r => r.alert ? 'yes' : 'no']], rows);
    const f = rows.filter(r => r.feature !== 'prediction error (bias)');
    Plotly.newPlot('psi', [{x:f.map(r=>r.symbol+' '+r.feature), y:f.map(r=>r.psi), type:'bar', name:'PSI'}],
      {yaxis:{title:'PSI'}, shapes:[{type:'line', xref:'paper', x0:0, x1:1, y0:0.25, y1:0.25, line:{dash:'dash', color:'red'}}], margin:{t:20}});
  }catch(e){ $('status').textContent = e.message; }
}
AUTOLOAD.add('models');

window.addEventListener('load', () => {
  $('key').value = sessionStorage.getItem('impactlab-key') || '';
  if (AUTOLOAD.has(document.body.dataset.page)) { go(); }
});
