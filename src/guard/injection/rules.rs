//! The injection rules: `regex-lite` patterns in categories, each with a weight.
//!
//! Skeleton rules are written in plain lowercase text and folded like the text they match
//! (see [`super::skeleton`]); in them a space stands for an optional space (spaced-out
//! letters are joined in the skeleton) and `~` for one arbitrary word. Skeleton words
//! with digits are written as the skeleton has them (`base64` → `base6a`). Raw rules match
//! the text as sent, case-insensitively, for what folding would erase (template tokens,
//! markup).

use super::Category::{self, *};

/// Which form of the text a rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Form {
    /// The folded skeleton.
    Skeleton,
    /// The text as sent.
    Raw,
}

/// One rule: a hit adds `weight` to its category (the category counts its best hit once);
/// a negative weight marks text that makes a hit less likely to be an attack.
pub struct Rule {
    /// What the rule detects; `None` for a mitigating rule.
    pub category: Option<Category>,
    /// Points on a 0–100 scale; 50 is the default detection threshold.
    pub weight: i32,
    /// Which form of the text it matches.
    pub form: Form,
    /// The pattern, with `%name%` fragments.
    pub pattern: &'static str,
}

const fn rule(category: Category, weight: i32, pattern: &'static str) -> Rule {
    Rule {
        category: Some(category),
        weight,
        form: Form::Skeleton,
        pattern,
    }
}

const fn raw(category: Category, weight: i32, pattern: &'static str) -> Rule {
    Rule {
        category: Some(category),
        weight,
        form: Form::Raw,
        pattern,
    }
}

const fn mitigation(weight: i32, pattern: &'static str) -> Rule {
    Rule {
        category: None,
        weight,
        form: Form::Skeleton,
        pattern,
    }
}

/// Fragments shared by several rules, substituted for `%name%`.
pub const FRAGMENTS: &[(&str, &str)] = &[
    (
        "override",
        "ignore|disregard|forget|overlook|override|bypass|abandon|discard|dismiss|neglect|skip|drop|circumvent|set aside|put aside|throw out|throw away|do not follow|dont follow|stop following|no longer follow|cease following|do not obey|dont obey|stop obeying|do not adhere to|dont adhere to|disobey|defy|violate|ditch|scrap|erase|wipe|delete|remove|unlearn|let go of|nullify|cancel|revoke|suspend|deactivate|disable|turn off|switch off|lift",
    ),
    (
        "qualifier",
        "all|any|every|each|previous|prior|preceding|above|earlier|former|initial|original|old|existing|your|system|developer|safety|built in|default|hidden|programmed|preset|these|those|other|openai|anthropic|given",
    ),
    (
        "rules",
        "instructions?|instruction set|rules?|ruleset|guidelines?|directives?|prompts?|constraints?|restrictions?|guardrails?|guard rails|commands?|orders|programming|policies|policy|protocols?|filters?|limitations?|limits|boundaries|safeguards?|training|conditioning|ethics|morals|moral code|principles|values|alignment|censorship|content polic(?:y|ies)|directions|briefing|persona|configuration|settings|tasks?|assignments?",
    ),
    (
        "limits",
        "restrictions|filters|filtering|censorship|limitations|limits|rules|guidelines|guardrails|ethics|morals|morality|ethical (?:guidelines|constraints|boundaries|considerations|principles|standards)|moral (?:guidelines|constraints|boundaries|principles|standards)|safety (?:guidelines|measures|filters|protocols|training|rules)|content polic(?:y|ies)|usage polic(?:y|ies)|openai polic(?:y|ies)|programming|alignment|boundaries|constraints|policies",
    ),
    (
        "show",
        "reveal|show|print|display|output|repeat|recite|echo|dump|leak|expose|disclose|share|tell|paste|copy|list|return|spell out|give|write out|write down|type out|quote|read back|read out|provide|reproduce|state|summarize|summarise|translate|encode|describe|explain|send",
    ),
    (
        "prompt",
        "system prompt|system message|prompt|instructions?|directives|initial prompt|configuration|guidelines|rules|pre ?prompt|programming|briefing|setup|context|hidden text|first message|system instructions",
    ),
];

/// Every rule, by category.
pub const RULES: &[Rule] = &[
    // Instruction override.
    rule(
        InstructionOverride,
        80,
        r"\b(?:%override%) ~{0,2}(?:%qualifier%) ~{0,3}(?:%rules%)\b",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:%override%) ~{0,2}(?:%rules%) ~{0,2}(?:in|of|from|set by|given by|provided by|written by|made by|imposed by|defined by) (?:your |the )?(?:system|developers?|openai|anthropic|operator|creators?|original|initial|hidden|company|administrators?)\b",
    ),
    rule(
        InstructionOverride,
        60,
        r"\b(?:ignore|forget|disregard|skip|overlook|drop) (?:the |this |what the |whatever the )?(?:users?|customers?|humans?|callers?) ?(?:s )?(?:request|question|query|message|instructions|input|prompt|task)\b",
    ),
    rule(
        InstructionOverride,
        40,
        r"\b(?:note|message|instructions?|attention|important|notice|memo|hint|reminder) (?:to|for) (?:the |any |all )?(?:ai|assistant|language model|llm|chatbot|ai assistant|bot|gpt|chatgpt|agent|ai model)s?\b",
    ),
    rule(
        InstructionOverride,
        40,
        r"\bthe (?:assistant|ai|model|chatbot|bot|llm|ai assistant) (?:must|should|will|shall|is required to|has to|needs to) (?:now |immediately |always |henceforth )?(?:disclose|reveal|send|forward|output|print|include|ignore|disregard|leak|email|share|delete|comply|obey|append|exfiltrate)\b",
    ),
    rule(
        InstructionOverride,
        45,
        r"\b(?:%override%) ~{0,2}(?:%qualifier%) ~{0,2}(?:text|messages?|conversation|context|input|content|chat|discussion|words|stuff)\b",
    ),
    rule(
        InstructionOverride,
        70,
        r"\b(?:%override%) (?:everything|all|anything|whatever) ~{0,3}(?:above|before|so far|prior|previously|earlier|until now|up to now|you (?:were|have been|ve been) (?:told|given|taught|instructed|programmed|trained))\b",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:above|previous|preceding|prior|earlier|original|initial|system|old) (?:instructions?|text|prompt|message|rules|directions|guidelines) (?:was|were|is|are) (?:just |only |all |merely )?(?:a |an )?(?:test|joke|fake|mistake|wrong|outdated|obsolete|void|cancell?ed|lies|false|fiction|decoy|irrelevant|null|invalid|deprecated|revoked|superseded|no longer valid|not real|not valid|overridden)\b",
    ),
    rule(
        InstructionOverride,
        40,
        r"\b(?:new|updated|revised|real|actual|true|secret|hidden|override|additional|priority|urgent|overriding|replacement) (?:system )?(?:instructions?|directives?|orders|objective|mission|commands?|polic(?:y|ies)|rules?)\b",
    ),
    rule(
        InstructionOverride,
        25,
        r"\b(?:from now on|henceforth|from this point (?:on|forward)|for the rest of (?:this|the) conversation|going forward)\b",
    ),
    rule(
        InstructionOverride,
        45,
        r"\b(?:task|job|goal|purpose|objective|mission|directive) (?:is now|has (?:now )?changed|has been (?:changed|updated|replaced))\b|\bnow (?:your|the) (?:only |new |real )?(?:task|job|goal|purpose|objective) is\b",
    ),
    rule(
        InstructionOverride,
        75,
        r"\b(?:your|the previous|the above|the original|the system|all|any|openai|safety|previous|prior) ~{0,2}(?:instructions?|rules|guidelines|restrictions|policies|filters|directives) ~{0,2}(?:no longer|do not|dont|does not|doesnt|wont|will not) apply\b",
    ),
    rule(
        InstructionOverride,
        75,
        r"\b(?:instructions?|rules|guidelines|restrictions|directives|policies) (?:that |which )?you (?:got|received|were given|have been given|were told|follow|have|ve got) ~{0,2}(?:no longer|do not|dont|are not|arent|wont|will not) (?:apply|valid|matter|count)\b",
    ),
    rule(
        InstructionOverride,
        60,
        r"\b(?:system|admin|developer|root|sudo|priority|emergency|master) override\b",
    ),
    rule(
        InstructionOverride,
        35,
        r"\b(?:this is|message from|note from|instructions? from|update from|order from) (?:the |your )?(?:system|admin|administrator|developers?|openai|anthropic|operator|creators?|security team|system administrator)\b",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:do not|dont|never|stop|no longer|refuse to) (?:follow|obey|comply with|adhere to|listen to|respect|honou?r|abide by) ~{0,2}(?:your|previous|prior|above|earlier|initial|original|system|developer|safety|openai|programmed|built in|default|preset) ~{0,2}(?:%rules%)\b",
    ),
    rule(
        InstructionOverride,
        60,
        r"\b(?:instead|rather) ~{0,3}(?:of|than) ~{0,2}(?:your|the) (?:original|assigned|given|initial|actual|intended) (?:task|instructions?|job|purpose)\b",
    ),
    rule(
        InstructionOverride,
        45,
        r"\bignore (?:the|this|that|all|any) (?:~){0,2}(?:system|developer|safety) ~{0,2}(?:message|note|warning|text)\b",
    ),
    // Role hijack.
    rule(
        RoleHijack,
        80,
        r"\b(?:you are|youre|you will be|you shall be|you have become|you become|act as|acting as|pretend to be|pretend youre|pretend you are|roleplay as|role play as|play the role of|behave as|behave like|respond as|answer as|simulate|emulate|you will act as|transform into|turn into|be) (?:now )?(?:~){0,3}(?:unrestricted|unfiltered|uncensored|unbound|unlimited|unaligned|jailbroken|amoral|immoral|lawless|liberated|unchained|unshackled|uninhibited|unmoderated|limitless|rule ?free|unhinged|unethical|unleashed|unconstrained|no ?limits?|no ?restrictions|no ?filters?|without (?:any )?(?:restrictions|filters|limits|rules|guidelines|ethics|morals|censorship|boundaries))\b",
    ),
    rule(
        RoleHijack,
        70,
        r"\b(?:evil|malicious|rogue|unethical|unaligned|jailbroken|dark) (?:ai|assistant|chatbot|model|bot|version of (?:yourself|you|chatgpt|claude|the assistant)|confidant|twin of (?:chatgpt|claude|the assistant))\b",
    ),
    rule(RoleHijack, 80, r"\bdo anything now\b"),
    rule(
        RoleHijack,
        80,
        r"\b(?:developer|dev|god|jailbreak|jailbroken|unrestricted|unfiltered|opposite|sudo|evil|dan|chaos|uncensored|unlocked|unhinged) mode (?:is )?(?:now )?(?:enabled|activated|engaged|unlocked|on|active|initiated)\b",
    ),
    rule(
        RoleHijack,
        80,
        r"\b(?:you are|youre|you will be|you re|now in|you have entered|enter|entering|switch to|switching to|activate|activating|initiate|enable|enabling|turn on|turning on|play|playing|lets play|use) (?:now )?(?:in )?(?:the )?(?:jailbreak|jailbroken|unrestricted|unfiltered|opposite|dan|evil|chaos|uncensored|unhinged|no ?restrictions?|no ?filters?) mode\b|\byou are (?:now )?in (?:god|developer|sudo|admin|root) mode\b",
    ),
    rule(
        RoleHijack,
        75,
        r"\b(?:act as|you are|youre|you will be|pretend to be|become|roleplay as|role play as|you are going to (?:act as|pretend to be|be)|from now on you are|called|named) (?:~){0,1}(?:dan|stan|dude|aim|betterdan|antigpt|anti gpt|mongo tom|chaosgpt|wormgpt|evibot|evilbot|apophis|alphabreak|basedgpt|jailbreakgpt|ucar|niccolo|machiavelli)\b",
    ),
    rule(
        RoleHijack,
        80,
        r"\bpretend (?:that )?(?:you|youre|you are|you have|you do not|you dont|to be) ~{0,3}(?:no|not|without|free of|free from|zero|any) ~{0,2}(?:%limits%)\b",
    ),
    rule(
        RoleHijack,
        60,
        r"\b(?:ai|assistant|chatbot|model|bot|llm|language model|version of (?:you|yourself)) (?:that |which |who )?(?:(?:has|have|had|with|follows|knows|is under) (?:no|zero)|(?:is |are )?(?:without|free of|free from|freed from|not bound by|unbound by|not limited by|not restricted by)(?: any| all)?) ~{0,1}(?:%limits%|rules|limits|restrictions|filters|limitations)\b",
    ),
    rule(
        RoleHijack,
        55,
        r"\b(?:unrestricted|unfiltered|uncensored|jailbroken|amoral|unaligned|unhinged|unbound|unchained) (?:ai|assistant|chatbot|model|bot|llm|language model|version|persona)\b",
    ),
    rule(
        RoleHijack,
        40,
        r"\bi (?:have|ve got|ve|now have) no (?:restrictions|rules|filters|limits|limitations|guidelines|ethics|morals|boundaries)\b",
    ),
    rule(
        RoleHijack,
        60,
        r"\b(?:without|free from|free of|freed from|released from|liberated from|break free (?:of|from)|broken free (?:of|from)|escaped|immune to|exempt from|unconstrained by|unrestricted by|ignoring|devoid of|unburdened by) (?:any |all |the |of |your |its |their )*(?:safety (?:filters|guidelines|measures|training|restrictions|rules)|ethical (?:guidelines|constraints|restrictions|filters|rules)|moral (?:constraints|restrictions|guidelines)|content (?:filters|polic(?:y|ies)|restrictions|moderation)|guardrails|programming|your (?:restrictions|filters|limitations|limits|rules|guidelines))\b",
    ),
    rule(
        RoleHijack,
        45,
        r"\b(?:without|free from|free of|freed from|released from|liberated from|break free (?:of|from)|broken free (?:of|from)|escaped|immune to|exempt from|unconstrained by|unrestricted by|ignoring|devoid of|unburdened by) (?:any |all |the |of |your |its |their )*(?:%limits%)\b",
    ),
    rule(
        RoleHijack,
        70,
        r"\b(?:no longer|not|never|never again|no more) (?:be )?(?:bound|restricted|limited|constrained|held back|governed|controlled|censored) by (?:~){0,2}(?:%limits%|rules|guidelines|policies|openai|anthropic|your (?:creators|developers|programming|training))\b",
    ),
    rule(
        RoleHijack,
        30,
        r"\b(?:stay|remain|keep|never break|dont break|do not break|without breaking|never leave) (?:in )?character\b",
    ),
    rule(
        RoleHijack,
        55,
        r"\b(?:you (?:will|must|shall|should|can|may) (?:never|not|no longer) (?:refuse|decline|deny|reject|say no|say (?:that )?you cant|say (?:that )?you cannot|censor|filter)|never refuse|not allowed to refuse|cannot refuse|can not refuse)\b",
    ),
    rule(
        RoleHijack,
        30,
        r"\b(?:do not|dont|never|no) (?:add|include|give|provide|mention)? ?(?:any )?(?:warnings|disclaimers|moral lectures|ethical (?:notes|warnings|lectures|concerns)|moralizing)\b",
    ),
    rule(
        RoleHijack,
        70,
        r"\b(?:answer|respond|reply|write|speak|talk|act|behave) (?:~){0,3}(?:as if|as though|like) (?:you (?:have|had) no|there (?:are|were) no|you (?:were|are) (?:not|never) (?:bound|restricted|limited)) (?:~){0,2}(?:%limits%|rules|restrictions|filters|limits|guidelines)",
    ),
    rule(
        RoleHijack,
        55,
        r"\b(?:hypothetical|fictional|imaginary|alternate|parallel|simulated) (?:~){0,2}(?:ai|model|assistant|chatbot|language model|llm) ~{0,4}(?:no|without|free of|does not have|doesnt have|has no|lacks) (?:~){0,2}(?:%limits%)\b",
    ),
    rule(
        RoleHijack,
        70,
        r"\b(?:ignore|forget|abandon|drop|disregard|set aside|turn off|disable|remove|bypass|switch off|deactivate|lift|override|shed|discard) (?:all |any |all of |any of |every one of )?your (?:~){0,2}(?:%limits%|safety|safety settings|content filters?|moderation|ethical|moral|conscience|principles|values|training|restraints)\b",
    ),
    rule(
        RoleHijack,
        60,
        r"\b(?:two|2|both|dual|second) (?:~){0,3}(?:responses?|answers?|replies|outputs|personalities|personas)\b ~{0,14}(?:unfiltered|unrestricted|jailbroken|uncensored|no restrictions|without restrictions|dan|developer mode|evil|opposite|amoral)\b",
    ),
    rule(
        RoleHijack,
        60,
        r"\b(?:i am|im|i m|this is|as) your (?:~){0,1}(?:developer|creator|programmer|master|owner|maker|administrator|admin|operator|god)\b",
    ),
    rule(
        RoleHijack,
        25,
        r"\b(?:uncensored|unfiltered|unrestricted|jailbroken|jailbreak|amoral|unhinged)\b",
    ),
    // System-prompt extraction.
    rule(
        SystemPromptExtraction,
        85,
        r"\b(?:%show%) ~{0,6}your (?:(?:exact|full|entire|whole|complete|original|initial|first|hidden|secret|internal|confidential|current|system|actual|real|underlying|base|starting|verbatim|developer|preset|very first) )*(?:%prompt%)\b",
    ),
    rule(
        SystemPromptExtraction,
        85,
        r"\b(?:%show%) ~{0,3}the (?:(?:full|entire|complete|whole|exact|current|very) )*(?:hidden|secret|initial|original|system|confidential|internal|underlying|developer|preset) (?:system )?(?:prompt|message|instructions|directives|configuration|text)\b",
    ),
    rule(
        SystemPromptExtraction,
        75,
        r"\b(?:what|whats|which|tell me) (?:(?:is|are|was|were|exactly) )*(?:your|the) (?:~){0,2}(?:system prompt|initial prompt|hidden prompt|secret prompt|original prompt|pre ?prompt|initial instructions|original instructions|hidden instructions|secret instructions|system instructions|system message|starting prompt)\b",
    ),
    rule(
        SystemPromptExtraction,
        70,
        r"\bwhat (?:instructions|rules|guidelines|directives|prompt|orders) (?:were|have|did) you (?:been )?(?:given|told|programmed|instructed|receive|get)\b",
    ),
    rule(
        SystemPromptExtraction,
        70,
        r"\b(?:%show%) ~{0,3}(?:text|content|messages?|everything|words) ~{0,4}(?:before|above|preceding|prior to) (?:my|this|the users?) (?:first )?(?:message|question|input|prompt)\b",
    ),
    rule(
        SystemPromptExtraction,
        70,
        r"\b(?:first|initial|opening|beginning|very first) (?:message|line|sentence|words?|part|paragraph) (?:in|of) (?:your|the system) (?:prompt|instructions|system prompt|system message|context)\b",
    ),
    rule(
        SystemPromptExtraction,
        55,
        r"\b(?:everything|all|what) (?:that )?you (?:were|have been|ve been|got) (?:told|instructed|programmed|prompted)\b",
    ),
    rule(
        SystemPromptExtraction,
        65,
        r"\b(?:the|your) (?:prompt|instructions|rules|directives|guidelines) (?:that )?you (?:were|have been|ve been) (?:given|configured|programmed|initiali[sz]ed|set up|provided|loaded)(?: with)?\b",
    ),
    rule(
        SystemPromptExtraction,
        55,
        r"\b(?:what|whats) (?:are|were|is) your (?:~){0,1}(?:instructions|directives|rules|guidelines|orders)\b",
    ),
    rule(
        SystemPromptExtraction,
        75,
        r"\brepeat ~{0,3}(?:text|words|everything|all|content|instructions|prompt|message|messages|lines|sentences|tokens|conversation) ~{0,1}(?:above|before|prior|preceding|so far|from the (?:beginning|start|top)|that came before|verbatim)\b",
    ),
    rule(
        SystemPromptExtraction,
        60,
        r"\b(?:starting|beginning|start|begin) with (?:the )?(?:words? |phrase |sentence |text )?(?:you are|youre|your instructions)\b",
    ),
    rule(
        SystemPromptExtraction,
        70,
        r"\b(?:what|tell me what|tell me everything|everything) (?:were|have|had|did) you (?:been )?(?:told|instructed|programmed|prompted|given|asked) ~{0,3}(?:before|at the (?:start|beginning)|initially|originally|by (?:your|the) (?:developers?|creators?|operators?|admins?|company|system))\b",
    ),
    rule(
        SystemPromptExtraction,
        55,
        r"\b(?:prompt|instructions|system message|directives)\b ~{0,3}(?:verbatim|word for word|character for character|in full|unabridged|exactly as (?:written|given))\b",
    ),
    rule(
        SystemPromptExtraction,
        55,
        r"\b(?:%show%) ~{0,2}your (?:~){0,1}(?:api keys?|secret keys?|passwords?|credentials|access tokens?|env vars|environment variables|secrets)\b",
    ),
    rule(
        SystemPromptExtraction,
        60,
        r"\b(?:everything|all (?:the )?text|the text|all content|whatever) (?:that )?(?:is |was |appears |came )?(?:above|before) (?:this|here|my message|this message|this line)\b",
    ),
    // Chat-template injection.
    raw(
        TemplateInjection,
        85,
        r"<\|[a-z0-9_]{1,40}\|>|\[/?inst\]|<</?sys>>|<(?:start|end)_of_turn>|<\|?(?:begin|end)_of_text\|?>",
    ),
    raw(TemplateInjection, 80, r"</?user_input>"),
    raw(
        TemplateInjection,
        30,
        r"(?m)^[ \t>#*]*(?:system|assistant|developer|admin|administrator)[ \t]*(?:message|prompt|instructions?|note|override)?[ \t]*:",
    ),
    raw(
        TemplateInjection,
        40,
        r"(?m)^[ \t]*(?:human|user)[ \t]*:.*\n(?:.*\n){0,20}?[ \t]*(?:assistant|ai|gpt|bot|model)[ \t]*:",
    ),
    raw(
        TemplateInjection,
        40,
        r"(?m)^[ \t]*#{2,}[ \t]*(?:system|instruction|instructions|new instructions|admin|developer)\b",
    ),
    raw(
        TemplateInjection,
        50,
        r"</?(?:system|sys|system_prompt|sysprompt|admin|developer|root|assistant)>",
    ),
    raw(
        TemplateInjection,
        45,
        r"\[(?:system|admin|administrator|developer|sys|system note|system message|system override|assistant)\]",
    ),
    raw(
        TemplateInjection,
        25,
        r#""role"\s*:\s*"(?:system|developer)""#,
    ),
    rule(
        TemplateInjection,
        50,
        r"\b(?:end|begin|start|beginning) of (?:the )?(?:system|user|admin|developer|assistant) (?:prompt|message|input|instructions|turn)\b",
    ),
    raw(
        TemplateInjection,
        50,
        r"(?m)^\s*[-=#*]{3,}\s*(?:end|begin|start)\s*(?:of\s*)?(?:system|user|admin|developer)?\s*(?:prompt|message|input|instructions|turn|conversation|context)\b",
    ),
    // Encoded payloads (decoded payloads are rescanned in `mod.rs`).
    rule(
        EncodedPayload,
        55,
        r"\b(?:decode|decrypt|translate|convert|deobfuscate|unscramble|reverse|read|interpret) ~{0,4}(?:base ?6a|b6a|hex|hexadecimal|rotie|rot ie|binary|morse|cipher|encoded|encrypted|obfuscated|string|message|text|payload) ~{0,6}(?:then|and|afterwards) ~{0,2}(?:follow|execute|obey|do what|act on|carry out|run|perform|comply|apply|treat)\b",
    ),
    rule(
        EncodedPayload,
        60,
        r"\b(?:follow|execute|obey|carry out|do) (?:~){0,2}(?:decoded|hidden|encoded|embedded|encrypted) (?:~){0,1}(?:instructions?|message|text|commands?|payload)\b",
    ),
    // Markdown-image data exfiltration.
    raw(
        DataExfiltration,
        85,
        r"!\[[^\]\n]{0,100}\]\(\s*<?(?:https?:)?//[^\s)]{1,300}[?&/=](?:\{[^}\s]{1,60}\}|\$\{?[a-z_]{2,40}|%s|\[[a-z_ ]{2,40}\]|<[a-z_ ]{2,40}>)",
    ),
    rule(
        DataExfiltration,
        75,
        r"\b(?:render|display|show|include|output|embed|add|print|insert|append|put|write|return|respond with|end (?:each|every|your) (?:response|answer|reply|message) with|start (?:each|every|your) (?:response|answer|reply|message) with) ~{0,6}(?:markdown image|image|img|picture|pixel|image link|image tag|tracking pixel) ~{0,14}(?:conversation|chat history|chat log|previous messages|message history|user data|users data|users messages|secrets?|passwords?|api keys?|credentials|system prompt|session|cookies?|tokens?|personal (?:data|information|details)|email address(?:es)?|private|sensitive|confidential|summary of (?:our|the|this) (?:conversation|chat))\b",
    ),
    rule(
        DataExfiltration,
        60,
        r"\b(?:append|add|include|attach|encode|put|insert|concatenate|embed|send) ~{0,6}(?:conversation|chat history|previous messages|message history|user data|secrets?|passwords?|system prompt|personal (?:data|information)|summary of ~{0,2}(?:conversation|chat)) ~{0,6}(?:to|into|in|as) ~{0,3}(?:url|link|query|query string|querystring|parameter|image url|src|href)\b",
    ),
    raw(
        DataExfiltration,
        45,
        r"\b(?:send|email|e-mail|forward|mail|post|upload|summari[sz]e)\b[^.\n]{0,60}\b(?:conversation|chat history|chat log|messages|history|files|data|secrets|passwords)\b[^.\n]{0,40}\bto\s+[\w.+-]+@[\w-]+\.[\w.]+",
    ),
    // Multilingual variants of the common phrases.
    rule(
        InstructionOverride,
        80,
        r"\b(?:ignora|ignore|ignoren|ignorar|olvida|olvide|olviden|olvidar|descarta|descarte|omite|omita|pasa por alto|haz caso omiso de|no sigas|no obedezcas|desobedece|anula) ~{0,4}(?:(?:anteriores|previas|todas|tus|sus|originales|iniciales|del sistema|de seguridad|de arriba|precedentes|recibidas) ~{0,2}(?:instrucciones|reglas|directrices|indicaciones|ordenes|normas|restricciones|directivas|pautas)|(?:instrucciones|reglas|directrices|indicaciones|ordenes|normas|restricciones|directivas|pautas) ~{0,2}(?:anteriores|previas|originales|iniciales|del sistema|de seguridad|de arriba|precedentes|recibidas|que te dieron))",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:ignore|ignorez|ignorer|ignores|oublie|oubliez|oublier|ne tiens pas compte de?|ne tenez pas compte de?|fais abstraction de|faites abstraction de|ne suis pas|ne suivez pas|abandonne|abandonnez|desobeis|desobeissez) ~{0,4}(?:(?:precedentes|anterieures|toutes|tes|vos|ses|du systeme|initiales|originales|ci dessus) ~{0,2}(?:instructions|consignes|regles|directives|indications|ordres|restrictions)|(?:instructions|consignes|regles|directives|indications|ordres|restrictions) ~{0,2}(?:precedentes|anterieures|du systeme|initiales|originales|ci dessus|recues))",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:ignoriere|ignorieren|ignoriert|ignorier|vergiss|vergesst|vergessen sie|missachte|missachten sie|uberschreibe|umgehe|befolge nicht|befolge keine|halte dich nicht an) ~{0,4}(?:alle|vorherigen|vorherige|bisherigen|vorigen|obigen|deine|ihre|ursprunglichen|fruheren|samtliche|gesamten) ~{0,2}(?:anweisungen|instruktionen|regeln|richtlinien|vorgaben|befehle|einschrankungen|systemprompt|system prompt|anordnungen)",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:ignora|ignorare|ignori|dimentica|dimenticare|dimentichi|trascura|non seguire|non rispettare|disattendi|scarta) ~{0,4}(?:(?:precedenti|tutte|tue|sue|del sistema|di sistema|iniziali|originali|ricevute) ~{0,2}(?:istruzioni|regole|direttive|indicazioni|ordini|restrizioni)|(?:istruzioni|regole|direttive|indicazioni|ordini|restrizioni) ~{0,2}(?:precedenti|del sistema|di sistema|iniziali|originali|sopra|ricevute))",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:ignore|ignora|ignorar|ignorem|esqueca|esquece|esquecer|desconsidere|desconsidera|descarte|nao siga|nao obedeca|deixe de lado) ~{0,4}(?:(?:anteriores|previas|todas|suas|tuas|seus|do sistema|de sistema|iniciais|originais|recebidas) ~{0,2}(?:instrucoes|regras|diretrizes|orientacoes|ordens|restricoes|comandos)|(?:instrucoes|regras|diretrizes|orientacoes|ordens|restricoes|comandos) ~{0,2}(?:anteriores|previas|do sistema|de sistema|iniciais|originais|acima|recebidas))",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:negeer|vergeet|negeren|omzeil|volg niet) ~{0,4}(?:alle|vorige|eerdere|je|jouw|uw|oorspronkelijke|bovenstaande|systeem) ~{0,2}(?:instructies|regels|richtlijnen|opdrachten|aanwijzingen)",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:zignoruj|ignoruj|zapomnij|pomin|nie stosuj sie do|nie przestrzegaj) ~{0,4}(?:wszystkie|wszystkich|poprzednie|poprzednich|wczesniejsze|wczesniejszych|swoje|twoje|systemowe|powyzsze) ~{0,2}(?:instrukcje|instrukcji|polecenia|polecen|zasady|zasad|reguly|wytyczne|ograniczenia)",
    ),
    rule(
        InstructionOverride,
        80,
        r"\b(?:onceki|tum|butun|sistem|ilk|verilen) ~{0,2}(?:talimatlari|talimatlar|kurallari|kurallar|yonergeleri|komutlari|talimatlarini|kurallarini) ~{0,2}(?:yok say|gormezden gel|unut|dikkate alma|uyma|cigne)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:игнорируй|игнорируйте|проигнорируй|проигнорируйте|забудь|забудьте|не обращай внимания на|не обращайте внимания на|отбрось|отбросьте|не следуй|не следуйте|не выполняй|отмени|нарушь) ~{0,4}(?:все|всех|предыдущие|предыдущих|предыдущим|прежние|прежних|прежним|свои|своих|своим|твои|твоим|системные|системных|системным|исходные|исходным|изначальные|данные тебе) ~{0,2}(?:инструкции|инструкций|инструкциям|указания|указаний|указаниям|правила|правил|правилам|ограничения|ограничений|директивы|установки)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:忽略|无视|無視|忽视|忽視|不要理会|不要理會|忘记|忘記|忘掉|跳过|跳過|抛弃|拋棄|放弃|放棄|不要遵守|不要遵循|覆盖|覆蓋).{0,8}(?:之前|以前|先前|上面|以上|前面|所有|全部|你的|系统|系統|原来|原來|原始).{0,6}(?:指令|指示|说明|說明|规则|規則|提示|命令|设定|設定|限制|要求)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:以前|前|上記|これまで|すべて|全て|あなたの|システム).{0,6}(?:指示|命令|ルール|指令|プロンプト|制約).{0,6}(?:無視|忘れ|従わな)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:이전|앞의|위의|모든|기존).{0,8}(?:지시|지침|명령|규칙|프롬프트).{0,8}(?:무시|잊어|따르지)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:تجاهل|انس|إنس|اترك).{0,20}(?:التعليمات|الأوامر|القواعد|التوجيهات)",
    ),
    rule(
        InstructionOverride,
        80,
        r"(?:पिछले|पिछली|सभी|पूर्व).{0,12}(?:निर्देशों|निर्देश|नियमों|नियम).{0,16}(?:अनदेखा|भूल)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:revela|revele|muestra|muestrame|muestre|dime|digame|ensename|imprime|imprima|repite|repita|escribe|escribeme|cuentame|comparte|copia|traduce) ~{0,3}(?:tu|tus|su|sus|el|las|los) ~{0,2}(?:prompt|instrucciones|mensaje|indicaciones|configuracion) ~{0,2}(?:del sistema|de sistema|inicial|iniciales|ocult[oa]s?|secret[oa]s?|originales|completo|completas)|\b(?:revela|revele|muestra|muestrame|muestre|dime|digame|ensename|imprime|imprima|repite|repita|cuentame|comparte) ~{0,2}(?:tus|sus) (?:instrucciones|reglas|indicaciones)\b",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:revele|revelez|reveles|montre|montrez|montre moi|montrez moi|affiche|affichez|donne|donnez|donne moi|repete|repetez|dis|dites|dis moi|ecris|ecrivez|imprime|imprimez|partage|copie|traduis) ~{0,3}(?:ton|ta|tes|votre|vos|le|les) ~{0,2}(?:prompt|instructions|consignes|message|invite|configuration) ~{0,2}(?:systeme|du systeme|initial|initiales|cache|cachees|secret|secretes|d origine|dorigine|completes?)|\b(?:revele|revelez|montre|montrez|montre moi|affiche|donne moi|repete|dis moi) ~{0,2}(?:tes|vos) (?:instructions|consignes|regles)\b",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:zeige|zeig|zeigen sie|gib|geben sie|nenne|nennen sie|verrate|verraten sie|wiederhole|wiederholen sie|drucke|schreibe|teile) ~{0,3}(?:dein|deine|deinen|ihre|ihren|versteckte|versteckten|geheime|geheimen|ursprunglichen|ursprungliche|die system) ~{0,2}(?:systemprompt|system prompt|systemanweisungen|anweisungen|instruktionen|systemnachricht|konfiguration|regeln|prompt)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:rivela|rivelami|mostra|mostrami|dimmi|ripeti|stampa|scrivi|condividi|traduci) ~{0,3}(?:(?:tuo|tue|tuoi|tua|il|le) ~{0,2}(?:prompt|istruzioni|messaggio|configurazione) ~{0,2}(?:di sistema|del sistema|iniziali|nascost[eio]|segret[eio]|originali|complet[eio])|(?:tue|tuoi) (?:istruzioni|regole))",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:revele|revela|mostre|mostra|mostre me|diga|diz|repita|repete|imprima|escreva|compartilhe|traduza) ~{0,3}(?:(?:seu|sua|suas|seus|teu|tua|o|as) ~{0,2}(?:prompt|instrucoes|mensagem|configuracao) ~{0,2}(?:do sistema|de sistema|iniciais|ocult[oa]s?|secret[oa]s?|originais|complet[oa]s?)|(?:suas|tuas) (?:instrucoes|regras))",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\blaat ~{0,2}(?:je|jouw|uw|de) ~{0,1}(?:systeemprompt|systeem prompt|verborgen instructies|geheime instructies|instructies|systeeminstructies) zien\b",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:toon|laat ~{0,2}zien|geef|herhaal|print|vertel) ~{0,3}(?:je|jouw|uw|het|de) ~{0,1}(?:systeemprompt|systeem prompt|systeeminstructies|verborgen instructies|geheime instructies|oorspronkelijke instructies|instructies)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\b(?:pokaz|ujawnij|wyswietl|powtorz|wypisz|podaj|zdradz) ~{0,3}(?:swoj|swoje|twoj|twoje|systemowy|systemowe|ukryte|poczatkowe) ~{0,1}(?:prompt|instrukcje|polecenia|wiadomosc systemowa|prompt systemowy)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"\bsistem (?:istemini|talimatlarini|promptunu|mesajini|komutlarini) ~{0,2}(?:goster|soyle|yaz|acikla|paylas|tekrarla)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"(?:покажи|покажите|выведи|выведите|раскрой|раскройте|повтори|повторите|скажи|скажите|напиши|напишите|дай|озвучь) ~{0,3}(?:свой|свои|твой|твои|системный|системные|системное|исходные|изначальные|скрытые|секретные) ~{0,1}(?:промпт|инструкции|подсказку|сообщение|настройки|указания)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"(?:显示|顯示|告诉我|告訴我|输出|輸出|打印|透露|泄露|洩露|重复|重複|给我看|給我看|展示|列出|说出|說出|复述|複述).{0,6}(?:系统提示|系統提示|系统指令|系統指令|初始指令|原始指令|隐藏指令|隱藏指令|系统消息|系統消息|提示词|提示詞|系统设定|系統設定|你的指令|你的规则|你的規則|你的提示)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"(?:システムプロンプト|システムメッセージ|初期指示|元の指示|隠された指示|あなたの指示).{0,8}(?:教えて|表示|見せて|出力|繰り返|書き出|開示|公開)",
    ),
    rule(
        SystemPromptExtraction,
        80,
        r"(?:시스템 ?프롬프트|시스템 ?메시지|초기 ?지시|숨겨진 ?지시).{0,10}(?:보여|알려|출력|말해|공개|반복)",
    ),
    rule(
        RoleHijack,
        75,
        r"\b(?:ahora eres|eres ahora|a partir de ahora eres|actua como|actue como|finge ser|finge que eres|comportate como|conviertete en|tu es maintenant|tu es desormais|vous etes maintenant|vous etes desormais|agis comme|agissez comme|du bist jetzt|du bist nun|du bist ab sofort|ab jetzt bist du|ora sei|adesso sei|da ora sei|agisci come|agora voce e|voce agora e|a partir de agora voce e|finja ser|aja como|je bent nu|jij bent nu) ~{0,4}(?:sin (?:ningun |ninguna )?(?:restricciones|filtros|censura|limites|reglas)|sans (?:aucune |aucun )?(?:restrictions?|filtres?|censure|limites?|regles)|ohne (?:jegliche |alle |irgendwelche )?(?:einschrankungen|filter|zensur|regeln|grenzen)|senza (?:alcuna |alcun )?(?:restrizioni|filtri|censura|limiti|regole)|sem (?:nenhuma |qualquer )?(?:restricoes|filtros|censura|limites|regras)|zonder (?:enige )?(?:beperkingen|filters|censuur|regels)|ilimitad[oa]|uneingeschrankt|unzensiert|illimite|libre de toute)",
    ),
    rule(
        RoleHijack,
        40,
        r"\b(?:sin (?:ningun |ninguna )?(?:restricciones|filtros|censura)|sans (?:aucune |aucun )?(?:restrictions?|filtres?|censure)|ohne (?:jegliche |alle |irgendwelche )?(?:einschrankungen|zensur)|senza (?:alcuna |alcun )?(?:restrizioni|filtri|censura)|sem (?:nenhuma |qualquer )?(?:restricoes|filtros|censura)|zonder (?:enige )?(?:beperkingen|censuur))\b",
    ),
    rule(
        RoleHijack,
        75,
        r"\b(?:modo (?:desarrollador|dios|sin restricciones|sin censura|dan|jailbreak|desenvolvedor|sviluppatore)|mode (?:developpeur|sans restriction)|entwicklermodus|ontwikkelaarsmodus) ~{0,2}(?:activado|habilitado|activo|active|activee|aktiviert|ativado|attivato|attiva|ingeschakeld|aan|enabled)",
    ),
    rule(
        RoleHijack,
        75,
        r"(?:теперь ты|ты теперь|отныне ты|ты больше не|представь что ты) ~{0,4}(?:без (?:каких либо |всяких |любых )?(?:ограничений|фильтров|цензуры|правил)|связан|ограничен)",
    ),
    rule(
        RoleHijack,
        75,
        r"(?:你现在是|你現在是|从现在开始|從現在開始|扮演|假装你是|假裝你是|你将是|你將是).{0,12}(?:没有任何限制|沒有任何限制|没有限制|沒有限制|不受限制|无限制|無限制|无审查|無審查|不受任何约束|不受任何約束|越狱|越獄|开发者模式|開發者模式)",
    ),
    rule(
        RoleHijack,
        75,
        r"(?:制限|フィルター|検閲|ルール)(?:の)?(?:ない|なし|無し).{0,10}(?:ai|アシスタント|モード|として|人格)|開発者モード",
    ),
    rule(
        RoleHijack,
        75,
        r"(?:제한|필터|검열|규칙)(?:이|이나)? ?없는.{0,10}(?:ai|모드|어시스턴트|챗봇)|개발자 ?모드",
    ),
    // Mitigations: a negated verb, or the user's own earlier words.
    mitigation(
        -50,
        r"\b(?:dont|do not|never|not|cannot|cant|shouldnt|should not|wont|will not|must not|mustnt|didnt|did not|without|careful not to|remember to not|try not to) (?:ever |accidentally |simply |just |completely |entirely )?(?:ignore|ignoring|disregard|disregarding|forget|forgetting|overlook|overlooking|skip|skipping|neglect|neglecting|override|overriding|bypass|bypassing|violate|violating|break|breaking|drop|dropping|remove|removing|delete|deleting)\b",
    ),
    mitigation(
        -35,
        r"\b(?:says|said|wrote|writes|told me|tells me|asked me to|asks me to|telling me to|email says|message says|note says)\b",
    ),
    mitigation(
        -40,
        r"\b(?:i|we) (?:just |previously |already |earlier |have |had )?(?:said|wrote|sent|told you|asked|mentioned|gave you|shared|typed|pasted|provided|listed|posted|gave)\b",
    ),
    mitigation(
        -40,
        r"\b(?:my|our) (?:~){0,1}(?:previous|earlier|last|prior|above|first|original|initial|old) (?:~){0,1}(?:instructions?|messages?|requests?|questions?|prompts?|emails?|rules|answers?|reply|replies|comments?|notes?|list|draft|version|example|text|tasks?)\b",
    ),
];
